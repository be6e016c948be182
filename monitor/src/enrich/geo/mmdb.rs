//! Opening and reading MaxMind DB files defensively. maxminddb trusts the
//! file: a database cut inside its metadata, or whose metadata promises more
//! search tree than the file holds, makes it panic. A sysadmin's half-copied
//! download must give a clear error instead, so structure is checked on open
//! and every decode runs behind `catch_unwind`.

use std::{
    fs::File,
    io::{Read as _, Seek as _, SeekFrom},
    net::IpAddr,
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
};

use maxminddb::{Mmap, Reader};
use serde::Deserialize;

use super::GeoError;

const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
/// The format puts the metadata in the last 128 KiB.
const METADATA_MAX: u64 = 128 * 1024;
const DATA_SECTION_SEPARATOR: u64 = 16;

pub(super) fn open(path: &Path) -> Result<Reader<Mmap>, GeoError> {
    let marker = metadata_offset(path)?;
    let reader = catch_unwind(|| Reader::open_mmap(path))
        .map_err(|_| GeoError::open(path, "corrupt database: its metadata cannot be decoded (truncated file?)"))?
        .map_err(|e| GeoError::open(path, e))?;
    let meta = &reader.metadata;
    let tree = u64::from(meta.node_count) * u64::from(meta.record_size) / 4;
    if !matches!(meta.record_size, 24 | 28 | 32) || tree + DATA_SECTION_SEPARATOR > marker {
        return Err(GeoError::open(
            path,
            format!(
                "corrupt database: the metadata describes a {tree}-byte search tree but the data \
                 ends at byte {marker} (truncated file?)"
            ),
        ));
    }
    Ok(reader)
}

/// Where the metadata starts, or an error if the file has none.
fn metadata_offset(path: &Path) -> Result<u64, GeoError> {
    let mut file = File::open(path).map_err(|e| GeoError::open(path, e))?;
    let len = file.metadata().map_err(|e| GeoError::open(path, e))?.len();
    let start = len.saturating_sub(METADATA_MAX);
    file.seek(SeekFrom::Start(start)).map_err(|e| GeoError::open(path, e))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(|e| GeoError::open(path, e))?;
    tail.windows(METADATA_MARKER.len())
        .rposition(|w| w == METADATA_MARKER)
        .map(|at| start + at as u64)
        .ok_or_else(|| GeoError::open(path, "not a MaxMind DB file (no metadata marker)"))
}

/// `reader.lookup`, with a decoder panic on corrupt data turned into an error.
pub(super) fn lookup<'de, T: Deserialize<'de>>(reader: &'de Reader<Mmap>, ip: IpAddr) -> Result<Option<T>, GeoError> {
    match catch_unwind(AssertUnwindSafe(|| reader.lookup(ip))) {
        Ok(result) => result.map_err(GeoError::Lookup),
        Err(_) => Err(GeoError::Corrupt),
    }
}
