//! The writer's side of the store: a minute in (and into its hour),
//! retention by age and by size, and the alerts' record.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use monitor_common::Class;
use rusqlite::{params, Connection};

use super::{
    error::{HistoryError, SqlContext as _},
    query,
    schema::{self, dim},
};
use crate::state::{MinuteSummary, Restored, SERIES};

pub const MINUTE_MS: u64 = 60_000;
pub const HOUR_MS: u64 = 3_600_000;
/// Days the per-minute tier is kept (at most `--history-days`); hours
/// cover the rest.
pub const MINUTE_TIER_DAYS: u32 = 2;

/// How much the store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub days: u32,
    /// The database's pages in use, at most (the WAL adds up to a few MB
    /// between checkpoints).
    pub max_bytes: u64,
}

/// One alert as the alerts' rules record it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRecord {
    pub name: String,
    /// A JSON object of the alert's labels.
    pub labels: String,
    pub state: String,
    pub starts_ms: u64,
    pub ends_ms: Option<u64>,
}

/// The store, open for writing: one owner (the writer task).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    retention: Retention,
}

/// SQLite integers are signed; ms since the epoch and counters fit.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating) the database at `path`; its directory is created
    /// and must be writable.
    pub fn open(path: &Path, retention: Retention) -> Result<Store, HistoryError> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        check_writable(dir)?;
        let conn = schema::open_writer(path)?;
        Ok(Store { conn, path: path.to_path_buf(), retention })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Commits one minute and adds it into its hour, in one transaction.
    /// Writing a minute again adds to it (the halves of a minute a restart
    /// cut in two).
    pub fn write_minute(&mut self, m: &MinuteSummary) -> Result<(), HistoryError> {
        let tx = self.conn.transaction().what("starting a transaction")?;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO traffic (step, ts, dim, key, packets, bytes, sources) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (step, dim, ts, key) DO UPDATE SET packets = CASE WHEN dim = 6
                        THEN packets | excluded.packets ELSE packets + excluded.packets END,
                        bytes = bytes + excluded.bytes, sources = max(sources, excluded.sources)",
                )
                .what("preparing the insert")?;
            let mut name = tx
                .prepare_cached(
                    "INSERT INTO names (dim, key, name, country, asn, seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (dim, key) DO UPDATE SET name = coalesce(excluded.name, name),
                        country = coalesce(excluded.country, country), asn = coalesce(excluded.asn, asn),
                        seen_ms = max(seen_ms, excluded.seen_ms)",
                )
                .what("preparing the names")?;
            let ts = m.start_ms - m.start_ms % MINUTE_MS;
            let hour = ts - ts % HOUR_MS;
            if m.covered != 0 {
                add.execute(params![int(MINUTE_MS), int(ts), dim::COVERAGE, "seconds", int(m.covered), 0, 0])
                    .what("writing the coverage")?;
            }
            let mut row = |d: i64, key: &str, packets: u64, bytes: u64, sources: u64| -> rusqlite::Result<()> {
                for (step, at) in [(MINUTE_MS, ts), (HOUR_MS, hour)] {
                    add.execute(params![int(step), int(at), d, key, int(packets), int(bytes), int(sources)])?;
                }
                Ok(())
            };
            // Every series, zeros too: a step with series rows was counted.
            for (series, packets) in SERIES.iter().zip(m.series) {
                row(dim::SERIES, series, packets, 0, 0).what("writing the series")?;
            }
            for (class, c) in Class::ALL.iter().zip(&m.classes).filter(|(_, c)| c.packets > 0) {
                row(dim::CLASS, class.name(), c.packets, c.bytes, 0).what("writing the classes")?;
            }
            for (code, country, c) in &m.countries {
                row(dim::COUNTRY, code, c.packets, c.bytes, c.sources).what("writing the countries")?;
                name.execute(params![dim::COUNTRY, code, country, code, None::<i64>, int(ts)])
                    .what("naming a country")?;
            }
            for (asn, org, c) in &m.asns {
                let key = asn.to_string();
                row(dim::ASN, &key, c.packets, c.bytes, c.sources).what("writing the networks")?;
                name.execute(params![dim::ASN, key, org.as_deref(), None::<String>, asn, int(ts)])
                    .what("naming a network")?;
            }
            for s in &m.sources {
                let key = s.ip.to_string();
                row(dim::SOURCE, &key, s.count.packets, s.count.bytes, 1).what("writing the sources")?;
                name.execute(params![dim::SOURCE, key, None::<String>, s.country_code, s.asn, int(ts)])
                    .what("placing a source")?;
            }
        }
        tx.commit().what("committing a minute")
    }

    /// Deletes what is older than the retention at `now_ms`, then the
    /// oldest hours while the database is over its size; shrinks the file
    /// when anything went. Returns the rows deleted.
    pub fn enforce_retention(&mut self, now_ms: u64) -> Result<u64, HistoryError> {
        let day = 24 * HOUR_MS;
        let cutoff = now_ms.saturating_sub(u64::from(self.retention.days) * day);
        let minute_days = MINUTE_TIER_DAYS.min(self.retention.days);
        let minute_cutoff = now_ms.saturating_sub(u64::from(minute_days) * day);
        let c = &self.conn;
        let mut deleted = 0u64;
        let older_than =
            format!("DELETE FROM traffic WHERE step IN (60000, 3600000) AND dim IN {} AND ts < ?1", schema::ALL_DIMS);
        deleted += c.execute(&older_than, [int(cutoff)]).what("deleting old data")? as u64;
        deleted += c
            .execute(
                &format!("DELETE FROM traffic WHERE step = ?1 AND dim IN {} AND ts < ?2", schema::ALL_DIMS),
                [int(MINUTE_MS), int(minute_cutoff)],
            )
            .what("deleting old minutes")? as u64;
        deleted += c
            .execute("DELETE FROM alerts WHERE coalesce(ends_ms, starts_ms) < ?1", [int(cutoff)])
            .what("deleting old alerts")? as u64;
        while self.used_bytes()? > self.retention.max_bytes {
            let oldest: Option<i64> =
                // Every step has its series rows: their oldest is the oldest of all.
                c.query_row("SELECT min(ts) FROM traffic WHERE step IN (60000, 3600000) AND dim = 0", [], |r| r.get(0))
                    .what("finding the oldest data")?;
            let Some(oldest) = oldest else { break };
            let until = oldest - oldest.rem_euclid(HOUR_MS as i64) + HOUR_MS as i64;
            let n = c.execute(&older_than, [until]).what("deleting the oldest hour")?;
            c.execute("DELETE FROM alerts WHERE coalesce(ends_ms, starts_ms) < ?1", [until])
                .what("deleting the oldest alerts")?;
            deleted += n as u64;
            self.shrink()?;
        }
        if deleted > 0 {
            c.execute("DELETE FROM names WHERE seen_ms < ?1", [int(cutoff)]).what("forgetting old names")?;
            self.shrink()?;
        }
        Ok(deleted)
    }

    /// Gives the free pages back to the file system: the file shrinks.
    fn shrink(&self) -> Result<(), HistoryError> {
        // One page per step: step to the end.
        let mut vacuum = self.conn.prepare("PRAGMA incremental_vacuum").what("vacuuming")?;
        let mut rows = vacuum.query([]).what("vacuuming")?;
        while rows.next().what("vacuuming")?.is_some() {}
        drop(rows);
        // The database file is truncated at a checkpoint (WAL mode).
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).what("checkpointing")
    }

    /// Bytes of the pages in use.
    pub fn used_bytes(&self) -> Result<u64, HistoryError> {
        let pragma = |name: &str| -> Result<u64, HistoryError> {
            self.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
                .what("reading the size")
                .map(|v| v.max(0) as u64)
        };
        Ok(pragma("page_count")?.saturating_sub(pragma("freelist_count")?) * pragma("page_size")?)
    }

    /// The file and its WAL on disk, in bytes.
    pub fn file_bytes(&self) -> u64 {
        let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        size(self.path.clone()) + size(wal.into())
    }

    /// The minutes of the hour before `now_ms`, oldest first.
    pub fn load_last_hour(&self, now_ms: u64) -> Result<Restored, HistoryError> {
        query::last_hour(&self.conn, now_ms)
    }

    /// The country codes and ASNs that sent anything since `since_ms`
    /// (both tiers; the hour tier rounds `since_ms` down to its hour).
    pub fn origins_seen_since(&self, since_ms: u64) -> Result<(HashSet<String>, HashSet<u32>), HistoryError> {
        query::origins_seen_since(&self.conn, since_ms)
    }

    /// Records an alert's state; returns its row id.
    pub fn record_alert(&self, alert: &AlertRecord) -> Result<i64, HistoryError> {
        self.conn
            .execute(
                "INSERT INTO alerts (name, labels, state, starts_ms, ends_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![alert.name, alert.labels, alert.state, int(alert.starts_ms), alert.ends_ms.map(int)],
            )
            .what("recording an alert")?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Every recorded alert, oldest first (for tests and tools).
    pub fn alerts(&self) -> Result<Vec<AlertRecord>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, labels, state, starts_ms, ends_ms FROM alerts ORDER BY starts_ms, id")
            .what("reading alerts")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AlertRecord {
                    name: r.get(0)?,
                    labels: r.get(1)?,
                    state: r.get(2)?,
                    starts_ms: r.get::<_, i64>(3)?.max(0) as u64,
                    ends_ms: r.get::<_, Option<i64>>(4)?.map(|v| v.max(0) as u64),
                })
            })
            .what("reading alerts")?;
        rows.collect::<Result<_, _>>().what("reading alerts")
    }

    /// The connection, for the queries the reader thread also runs.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Creates `dir` if needed and checks that a file can be made in it: a
/// clear error now rather than SQLite's "unable to open database file".
fn check_writable(dir: &Path) -> Result<(), HistoryError> {
    let not_writable = |source| HistoryError::NotWritable { dir: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(not_writable)?;
    let probe = dir.join(format!(".monitor-write-test-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(not_writable)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
