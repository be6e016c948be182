//! The database file: pragmas and tables.

use rusqlite::Connection;

use super::error::{HistoryError, SqlContext as _};

/// Bumped when the tables change incompatibly.
const SCHEMA_VERSION: i64 = 1;

/// Dimensions of the `traffic` table (its `dim` column).
pub(super) mod dim {
    /// A rate series of the chart (`icmp`, ..., `syslog`): packets.
    pub(crate) const SERIES: i64 = 0;
    /// A class, the kernel's exact packets and bytes.
    pub(crate) const CLASS: i64 = 1;
    pub(crate) const COUNTRY: i64 = 2;
    pub(crate) const ASN: i64 = 3;
    /// One of the top sources of its minute.
    pub(crate) const SOURCE: i64 = 4;
    // 5: per destination host, later: a dimension, no new table.
    /// The seconds of a minute that were counted (`packets` is the bit
    /// mask; minute tier only): a restart's minute is drawn only where it was.
    pub(crate) const COVERAGE: i64 = 6;
}

/// Every dimension, for deletes by time through the primary key (no index
/// on `ts` alone: it would add a third to the file).
pub(super) const ALL_DIMS: &str = "(0, 1, 2, 3, 4, 5, 6)";

/// One table of counts for every dimension and both tiers, so a new
/// dimension (per host) needs no new table; `names` holds what a key is
/// called (a country's name, an AS's organisation, a source's country and
/// ASN), once rather than per minute.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS traffic (
    step    INTEGER NOT NULL, -- 60000 (minute) or 3600000 (hour)
    ts      INTEGER NOT NULL, -- start of the step, ms since the epoch
    dim     INTEGER NOT NULL, -- see schema::dim
    key     TEXT    NOT NULL,
    packets INTEGER NOT NULL,
    bytes   INTEGER NOT NULL,
    sources INTEGER NOT NULL,
    PRIMARY KEY (step, dim, ts, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS names (
    dim     INTEGER NOT NULL,
    key     TEXT    NOT NULL,
    name    TEXT,
    country TEXT,
    asn     INTEGER,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (dim, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id        INTEGER PRIMARY KEY,
    name      TEXT    NOT NULL,
    labels    TEXT    NOT NULL, -- JSON object
    state     TEXT    NOT NULL,
    starts_ms INTEGER NOT NULL,
    ends_ms   INTEGER
);
CREATE INDEX IF NOT EXISTS alerts_starts ON alerts (starts_ms);
";

/// Opens (creating) the database for writing: WAL, incremental vacuum.
pub(super) fn open_writer(path: &std::path::Path) -> Result<Connection, HistoryError> {
    let conn = Connection::open(path).map_err(|source| HistoryError::Open { path: path.into(), source })?;
    // auto_vacuum only takes effect before the first table exists.
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;").what("setting auto_vacuum")?;
    conn.pragma_update(None, "journal_mode", "WAL").what("turning on WAL")?;
    // In WAL mode, NORMAL loses no committed transaction when the process
    // dies (only on power loss), and syncs at checkpoints only.
    conn.pragma_update(None, "synchronous", "NORMAL").what("setting synchronous")?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).what("setting the busy timeout")?;
    conn.execute_batch(TABLES).what("creating the tables")?;
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?1)", [SCHEMA_VERSION])
        .what("recording the schema version")?;
    Ok(conn)
}

/// Opens the database for reading only (the reader thread's connection).
pub(super) fn open_reader(path: &std::path::Path) -> Result<Connection, HistoryError> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(|source| HistoryError::Open { path: path.into(), source })?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).what("setting the busy timeout")?;
    Ok(conn)
}
