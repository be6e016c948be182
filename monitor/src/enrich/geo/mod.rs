//! Geolocation and ASN enrichment: memory-mapped databases, a bounded
//! cache, special ranges labelled, reload on SIGHUP or file change. A missing
//! or corrupt database is reported and the daemon runs on without it.

mod asn;
mod cache;
mod city;
mod mmdb;

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::lock::lock;
pub use crate::model::{label, AddressLabel, GeoInfo};
pub use asn::{AsnDb, AsnInfo, RangeTable};
pub use cache::GenerationalCache;
pub use city::{CityDb, CityInfo};

#[derive(Debug, Error)]
pub enum GeoError {
    #[error("cannot open {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("{path}: line {line} is not `start,end,asn,organisation`")]
    Csv { path: PathBuf, line: usize },
    #[error("lookup failed: {0}")]
    Lookup(maxminddb::MaxMindDbError),
    #[error("lookup failed: corrupt database")]
    Corrupt,
}

impl GeoError {
    fn open(path: &Path, e: impl std::fmt::Display) -> Self {
        GeoError::Open { path: path.to_owned(), message: e.to_string() }
    }
}

/// What a database is and how old, for the health panel.
#[derive(Clone, Debug, Serialize)]
pub struct DatabaseStatus {
    pub path: PathBuf,
    #[serde(rename = "type")]
    pub kind: String,
    /// When the data was built (mmdb metadata) or the file last changed.
    pub build_epoch: u64,
    pub age_days: u64,
    /// Address ranges read from the file (CSV only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<usize>,
}

impl DatabaseStatus {
    fn from_mmdb(path: &Path, meta: &maxminddb::Metadata) -> Self {
        DatabaseStatus {
            path: path.to_owned(),
            kind: meta.database_type.clone(),
            build_epoch: meta.build_epoch,
            age_days: age_days(meta.build_epoch),
            ranges: None,
        }
    }

    fn from_file(path: &Path, kind: &str) -> Self {
        let epoch = modified_epoch(path).unwrap_or(0);
        DatabaseStatus {
            path: path.to_owned(),
            kind: kind.to_owned(),
            build_epoch: epoch,
            age_days: age_days(epoch),
            ranges: None,
        }
    }
}

fn is_csv(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Older than this, a database is flagged (log, dashboard health panel).
const OLD_DAYS: u64 = 60;

fn age_days(epoch: u64) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    now.saturating_sub(epoch) / 86_400
}

fn modified_epoch(path: &Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    modified.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// What identifies a file's current content cheaply: a replacement (new
/// inode), an in-place rewrite (size or nanosecond mtime) all show.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileVersion {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn file_version(path: &Path) -> Option<FileVersion> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some(FileVersion { inode: meta.ino(), len: meta.len(), modified: meta.modified().ok() })
}

#[derive(Clone, Debug, Default)]
pub struct GeoConfig {
    pub city: Vec<PathBuf>,
    pub asn: Vec<PathBuf>,
    pub cache_entries: usize,
}

#[derive(Default)]
struct Databases {
    city: Vec<Arc<CityDb>>,
    /// In the configured order; the CSV ranges of every configured CSV file
    /// are merged into one table, at the place of the first CSV file.
    asn: Vec<Arc<AsnDb>>,
    /// Bumped by every reload, so a lookup that raced one is not cached.
    generation: u64,
}

/// The attribution DB-IP's CC BY 4.0 licence requires wherever results show.
#[derive(Clone, Debug, Serialize)]
pub struct Attribution {
    pub text: &'static str,
    pub url: &'static str,
    pub license: &'static str,
}

pub const DBIP_ATTRIBUTION: Attribution =
    Attribution { text: "IP geolocation by DB-IP", url: "https://db-ip.com", license: "CC BY 4.0" };

#[derive(Clone, Debug, Serialize)]
pub struct GeoStatus {
    pub city_db: Vec<DatabaseStatus>,
    pub asn_db: Vec<DatabaseStatus>,
    pub errors: Vec<String>,
    pub cache_entries: usize,
    pub attribution: Attribution,
}

pub struct Geo {
    config: GeoConfig,
    databases: RwLock<Arc<Databases>>,
    cache: Mutex<GenerationalCache<IpAddr, Arc<GeoInfo>>>,
    errors: Mutex<Vec<String>>,
    /// The files the databases were loaded from.
    loaded_versions: Mutex<Vec<Option<FileVersion>>>,
    /// The databases' generation, readable without a lock (see [`Geo::generation`]).
    generation: AtomicU64,
}

impl Geo {
    /// Starts without databases; call [`Geo::reload`] (e.g. on a blocking
    /// thread) to load them, so start-up never waits on a large file.
    pub fn new(config: GeoConfig) -> Self {
        Geo {
            cache: Mutex::new(GenerationalCache::new(config.cache_entries)),
            config,
            databases: RwLock::new(Arc::new(Databases::default())),
            errors: Mutex::new(Vec::new()),
            loaded_versions: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// (Re)loads every configured database, then swaps them in at once:
    /// lookups keep using the old set until the new one is ready.
    pub fn reload(&self) {
        let mut errors = Vec::new();
        let mut dbs = Databases::default();
        let previous = self.databases.read().unwrap_or_else(|e| e.into_inner()).clone();
        // A file that is there but unusable (a botched update, garbage)
        // leaves the copy loaded before in use; a file that is gone is
        // dropped.
        let keep_previous = |path: &Path, e: &GeoError, errors: &mut Vec<String>| -> bool {
            if !path.exists() {
                errors.push(e.to_string());
                return false;
            }
            errors.push(format!("{e}; the copy loaded before stays in use"));
            true
        };
        for path in &self.config.city {
            match CityDb::open(path) {
                Ok(db) => dbs.city.push(Arc::new(db)),
                Err(e) => match previous.city.iter().find(|db| db.status.path == *path) {
                    Some(old) if keep_previous(path, &e, &mut errors) => dbs.city.push(Arc::clone(old)),
                    Some(_) => {}
                    None => errors.push(e.to_string()),
                },
            }
        }
        let versions = self.current_versions();
        // Every CSV file is merged into one table (ip-location-db ships one
        // per address family), placed where the first one is configured.
        let mut csv: Option<(usize, RangeTable, Vec<DatabaseStatus>)> = None;
        let mut csv_failed = false;
        let previous_csv = previous.asn.iter().find(|db| matches!(***db, AsnDb::Ranges { .. }));
        for path in &self.config.asn {
            match AsnDb::open(path) {
                Ok(AsnDb::Ranges { table, files }) => match &mut csv {
                    Some((_, merged, merged_files)) => {
                        merged.merge(table);
                        merged_files.extend(files);
                    }
                    None => csv = Some((dbs.asn.len(), table, files)),
                },
                Ok(db) => dbs.asn.push(Arc::new(db)),
                Err(e) if is_csv(path) => match previous_csv {
                    Some(_) if keep_previous(path, &e, &mut errors) => csv_failed = true,
                    Some(_) => {}
                    None => errors.push(e.to_string()),
                },
                Err(e) => match previous.asn.iter().find(|db| db.statuses().iter().any(|s| s.path == *path)) {
                    Some(old) if keep_previous(path, &e, &mut errors) => dbs.asn.push(Arc::clone(old)),
                    Some(_) => {}
                    None => errors.push(e.to_string()),
                },
            }
        }
        // A CSV file that is there but unusable keeps the old table whole.
        let ranges = match (csv, previous_csv.filter(|_| csv_failed)) {
            (Some((at, _, _)), Some(old)) => Some((at, Arc::clone(old))),
            (None, Some(old)) => Some((dbs.asn.len(), Arc::clone(old))),
            (Some((at, table, files)), None) => Some((at, Arc::new(AsnDb::Ranges { table, files }))),
            (None, None) => None,
        };
        if let Some((at, db)) = ranges {
            dbs.asn.insert(at, db);
        }
        for e in &errors {
            tracing::warn!(error = %e, "GeoIP database unavailable; continuing without it");
        }
        tracing::info!(city = dbs.city.len(), asn = dbs.asn.len(), "GeoIP databases loaded");
        let statuses = dbs.city.iter().map(|d| &d.status).chain(dbs.asn.iter().flat_map(|d| d.statuses()));
        for db in statuses.filter(|db| db.age_days > OLD_DAYS) {
            tracing::warn!(
                path = %db.path.display(),
                age_days = db.age_days,
                "GeoIP database is old; fresher data: MONITOR_GEO_REFRESH=1 ./setup.sh (as root) downloads the \
                 latest, and the running daemon picks the new files up by itself"
            );
        }
        {
            // Swap and clear under the cache lock: a lookup that read the old
            // set sees the new generation when it comes to insert, and drops
            // its answer instead of caching it.
            let mut cache = lock(&self.cache);
            let mut current = self.databases.write().unwrap_or_else(|e| e.into_inner());
            dbs.generation = current.generation + 1;
            self.generation.store(dbs.generation, Ordering::Release);
            *current = Arc::new(dbs);
            drop(current);
            cache.clear();
        }
        *lock(&self.errors) = errors;
        *lock(&self.loaded_versions) = versions;
    }

    fn current_versions(&self) -> Vec<Option<FileVersion>> {
        self.config.city.iter().chain(&self.config.asn).map(|p| file_version(p)).collect()
    }

    /// True if a configured file appeared, vanished or changed since loading.
    pub fn files_changed(&self) -> bool {
        *lock(&self.loaded_versions) != self.current_versions()
    }

    /// Bumped by every reload: an answer kept since an older generation
    /// may be stale. Read it before [`Geo::lookup`]: an answer is then never
    /// older than the generation it is kept under.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn lookup(&self, ip: IpAddr) -> Arc<GeoInfo> {
        if let Some(hit) = lock(&self.cache).get(&ip) {
            return hit;
        }
        let dbs = self.databases.read().unwrap_or_else(|e| e.into_inner()).clone();
        let info = Arc::new(Self::lookup_in(&dbs, ip));
        let mut cache = lock(&self.cache);
        if self.databases.read().unwrap_or_else(|e| e.into_inner()).generation == dbs.generation {
            cache.insert(ip, Arc::clone(&info));
        }
        info
    }

    fn lookup_in(dbs: &Databases, ip: IpAddr) -> GeoInfo {
        // ::ffff:a.b.c.d is an IPv4 peer seen through a dual-stack socket.
        let ip = ip.to_canonical();
        let label = label(ip);
        let mut info = GeoInfo::only(label);
        if label != AddressLabel::Public {
            return info;
        }
        if let Some(city) = dbs.city.iter().filter(|db| db.covers(ip)).find_map(|db| db.lookup(ip).ok().flatten()) {
            info.country_code = city.country_code;
            info.country = city.country;
            info.city = city.city;
            info.lat = city.lat;
            info.lon = city.lon;
        }
        if let Some(asn) = dbs.asn.iter().find_map(|db| db.lookup(ip).ok().flatten()) {
            info.asn = Some(asn.asn);
            info.as_org = asn.org;
        }
        info
    }

    pub fn status(&self) -> GeoStatus {
        let dbs = self.databases.read().unwrap_or_else(|e| e.into_inner()).clone();
        GeoStatus {
            city_db: dbs.city.iter().map(|d| d.status.clone()).collect(),
            asn_db: dbs.asn.iter().flat_map(|d| d.statuses().iter().cloned()).collect(),
            errors: lock(&self.errors).clone(),
            cache_entries: lock(&self.cache).len(),
            attribution: DBIP_ATTRIBUTION,
        }
    }
}

/// Reloads on SIGHUP and when a database file changes (checked every 30 s),
/// until `stop` is cancelled.
pub async fn watch(geo: Arc<Geo>, stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.tick().await;
    loop {
        let reason = tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => if geo.files_changed() { "file changed" } else { continue },
            Some(()) = async { match &mut hup { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
        };
        tracing::info!(reason, "reloading GeoIP databases");
        let g = Arc::clone(&geo);
        if let Err(error) = tokio::task::spawn_blocking(move || g.reload()).await {
            tracing::error!(%error, "GeoIP reload panicked; keeping the previous databases");
        }
    }
}
