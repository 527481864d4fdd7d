//! Storage faults: which database errors mean "the storage cannot take writes now" (disk full,
//! I/O error, read-only file system, database unreachable), and the store's write health.

use sqlx::error::DatabaseError;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// A failure of the storage itself, as opposed to a failure of one request: nothing was
/// committed, and the same request may succeed once the storage recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// Out of space: SQLite `SQLITE_FULL`, `ENOSPC`, PostgreSQL `53100 disk_full`.
    Full,
    /// Cannot read or write: SQLite `SQLITE_IOERR*`, `SQLITE_READONLY*`, `SQLITE_CANTOPEN`,
    /// `SQLITE_CORRUPT`/`SQLITE_NOTADB`, `EROFS`/`EIO`; PostgreSQL unreachable (I/O, TLS,
    /// SQLSTATE class 08, shutdown, read-only standby) or the pool timed out.
    Unavailable,
    /// Too busy to answer in time: a PostgreSQL lock wait or statement ran into its timeout
    /// (SQLSTATE 55P03 `lock_not_available`, 57014 `query_canceled`). Not a failure of the
    /// storage: readiness is unaffected.
    Busy,
}

impl StorageFault {
    /// Stable code: `storage_full`, `storage_unavailable` or `storage_busy`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Full => "storage_full",
            Self::Unavailable => "storage_unavailable",
            Self::Busy => "storage_busy",
        }
    }

    /// What to call it in a log line: `disk full`, `storage unavailable` or `storage busy`.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Full => "disk full",
            Self::Unavailable => "storage unavailable",
            Self::Busy => "storage busy",
        }
    }

    /// Seconds a client should wait before retrying (`Retry-After`).
    #[must_use]
    pub fn retry_after_secs(self) -> u16 {
        match self {
            // someone has to free space first
            Self::Full => 30,
            Self::Unavailable => 5,
            Self::Busy => 1,
        }
    }
}

// SQLite primary result codes (the low byte of an extended code).
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_NOTADB: i64 = 26;

/// Linux `ENOSPC` (for errors std does not map to `ErrorKind::StorageFull`).
const ENOSPC: i32 = 28;

/// Whether `e` is a PostgreSQL lock or statement timeout (55P03, 57014) or a pool with no
/// connection free in time: the database is busy, not failing ([`StorageFault::Busy`]).
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_none()
                && db
                    .code()
                    .is_some_and(|c| matches!(c.as_ref(), "55P03" | "57014"))
        }
        _ => false,
    }
}

/// The storage fault behind `e`, if it is one.
pub(crate) fn classify(e: &sqlx::Error) -> Option<StorageFault> {
    match e {
        sqlx::Error::Database(db) => {
            if let Some(s) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // sqlx-sqlite reports the extended result code as a decimal string.
                let code: i64 = s.code()?.parse().ok()?;
                match code & 0xff {
                    SQLITE_FULL => Some(StorageFault::Full),
                    SQLITE_IOERR | SQLITE_READONLY | SQLITE_CANTOPEN | SQLITE_CORRUPT
                    | SQLITE_NOTADB => Some(StorageFault::Unavailable),
                    _ => None,
                }
            } else if let Some(p) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                classify_sqlstate(p.code())
            } else {
                None
            }
        }
        sqlx::Error::Io(io) => Some(classify_io(io)),
        sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(StorageFault::Unavailable),
        _ => None,
    }
}

fn classify_sqlstate(code: &str) -> Option<StorageFault> {
    match code {
        "53100" => Some(StorageFault::Full),
        // connection exceptions; insufficient resources, out of memory, too many connections;
        // I/O error; read-only transaction (a standby); shutdowns and "cannot connect now"
        c if c.starts_with("08") => Some(StorageFault::Unavailable),
        "53000" | "53200" | "53300" | "58030" | "25006" | "57P01" | "57P02" | "57P03" => {
            Some(StorageFault::Unavailable)
        }
        _ => None,
    }
}

pub(crate) fn classify_io(io: &std::io::Error) -> StorageFault {
    if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(ENOSPC) {
        StorageFault::Full
    } else {
        // EROFS, EIO, connection refused/reset, …
        StorageFault::Unavailable
    }
}

const HEALTHY: u8 = 0;
const FULL: u8 = 1;
const UNAVAILABLE: u8 = 2;

/// Write health shared by every clone of a [`crate::Store`]: set by the outcome of every write
/// transaction (a commit makes it healthy; a storage fault makes it failing).
#[derive(Debug)]
pub(crate) struct Health {
    state: AtomicU8,
    /// Milliseconds after `epoch` when the current failing period began (0: healthy).
    failing_since_ms: AtomicU64,
    /// The last failing period that ended, as milliseconds after `epoch` (0: none). Pooled
    /// connections opened during it are not reused (see [`Health::reusable`]).
    window_start_ms: AtomicU64,
    window_end_ms: AtomicU64,
    epoch: Instant,
    /// Serializes probe writes; holds when the last one started.
    pub(crate) probe: tokio::sync::Mutex<Option<Instant>>,
}

impl Health {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(HEALTHY),
            failing_since_ms: AtomicU64::new(0),
            window_start_ms: AtomicU64::new(0),
            window_end_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            probe: tokio::sync::Mutex::new(None),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// A write transaction committed.
    pub(crate) fn committed(&self) {
        if self.state.swap(HEALTHY, Ordering::AcqRel) != HEALTHY {
            let since = self.failing_since_ms.swap(0, Ordering::AcqRel);
            self.window_start_ms.store(since, Ordering::Release);
            self.window_end_ms.store(self.now_ms(), Ordering::Release);
            tracing::warn!("storage takes writes again");
        }
    }

    /// A storage fault happened (any other error leaves the health alone).
    pub(crate) fn failed(&self, fault: StorageFault) {
        if fault == StorageFault::Busy {
            return;
        }
        let _ = self.failing_since_ms.compare_exchange(
            0,
            self.now_ms(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.state.store(
            match fault {
                StorageFault::Full => FULL,
                StorageFault::Unavailable => UNAVAILABLE,
                StorageFault::Busy => return,
            },
            Ordering::Release,
        );
    }

    /// Records the fault behind `e`, if any.
    pub(crate) fn note(&self, e: &sqlx::Error) {
        if let Some(f) = classify(e) {
            self.failed(f);
        }
    }

    /// `None` while writes commit, else the last fault.
    pub(crate) fn fault(&self) -> Option<StorageFault> {
        match self.state.load(Ordering::Acquire) {
            FULL => Some(StorageFault::Full),
            UNAVAILABLE => Some(StorageFault::Unavailable),
            _ => None,
        }
    }

    /// Whether an idle pooled connection of age `age` may be handed out again: not if it was
    /// opened while the storage was failing, once it works again. Such a connection may keep a
    /// state the fault forced on it (SQLite opens a database read-only when it cannot open it
    /// for writing, e.g. on a read-only file system). While the storage is still failing every
    /// connection is kept: reads may still work on them, and closing them all would make SQLite
    /// set up its shared-memory index again, which needs writes.
    pub(crate) fn reusable(&self, age: Duration) -> bool {
        if self.state.load(Ordering::Acquire) != HEALTHY {
            return true;
        }
        let end = self.window_end_ms.load(Ordering::Acquire);
        if end == 0 {
            return true;
        }
        let start = self.window_start_ms.load(Ordering::Acquire);
        let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
        let opened = self.now_ms().saturating_sub(age_ms);
        !(start..=end).contains(&opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_and_io_errors_are_classified() {
        assert_eq!(classify_sqlstate("53100"), Some(StorageFault::Full));
        assert_eq!(classify_sqlstate("08006"), Some(StorageFault::Unavailable));
        assert_eq!(classify_sqlstate("57P01"), Some(StorageFault::Unavailable));
        assert_eq!(classify_sqlstate("23505"), None);
        assert_eq!(classify_sqlstate("40001"), None);
        let full = std::io::Error::from_raw_os_error(ENOSPC);
        assert_eq!(classify_io(&full), StorageFault::Full);
        let rofs = std::io::Error::from_raw_os_error(30); // EROFS
        assert_eq!(classify_io(&rofs), StorageFault::Unavailable);
        assert_eq!(
            classify(&sqlx::Error::PoolTimedOut),
            Some(StorageFault::Unavailable)
        );
        assert_eq!(classify(&sqlx::Error::RowNotFound), None);
    }

    #[test]
    fn connections_opened_during_a_fault_are_retired_once_it_is_over() {
        let ms = Duration::from_millis;
        let h = Health::new();
        std::thread::sleep(ms(20));
        assert!(h.reusable(ms(10)));
        h.failed(StorageFault::Unavailable);
        assert_eq!(h.fault(), Some(StorageFault::Unavailable));
        std::thread::sleep(ms(20));
        // opened during the fault, but it is not over: kept
        assert!(h.reusable(ms(10)));
        std::thread::sleep(ms(20));
        h.committed();
        assert_eq!(h.fault(), None);
        std::thread::sleep(ms(20));
        assert!(!h.reusable(ms(40)), "opened during the fault");
        assert!(h.reusable(ms(100)), "opened before the fault");
        assert!(h.reusable(ms(5)), "opened after the fault");
    }
}
