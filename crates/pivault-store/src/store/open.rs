//! Opening a [`Store`]: URL parsing, the pool and its per-connection settings, migrations,
//! closing and the SQLite checkpoint.

use super::{Backend, Store};
use crate::fault::Health;
use crate::guard::GuardedPool;
use crate::StoreError;
use sqlx::any::AnyPoolOptions;
use sqlx::{Connection, Executor};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Per-connection SQLite settings: WAL for concurrent readers, `secure_delete` so deleted
/// rows (wrapped DEKs, blind-index entries) are overwritten in the file, a busy timeout for
/// the CLI running beside the server.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA secure_delete=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
    // 64 MiB page cache and 256 MiB of mmap: random-UUID keys touch pages all over the file,
    // and with the 2 MiB default most of an import's time went to read() syscalls.
    "PRAGMA cache_size=-65536",
    "PRAGMA mmap_size=268435456",
    "PRAGMA temp_store=MEMORY",
];

/// Per-connection PostgreSQL settings: a statement that runs too long, or waits too long for a
/// lock (the audit-chain head every writer takes), fails with SQLSTATE 57014 or 55P03 —
/// [`StoreError::Busy`], answered 503 `storage_busy` — instead of holding its pool connection
/// (and with it every instance's writers) until clients give up; a transaction left idle by its
/// holder is ended by the server. Migrations run without them ([`Store::migrate`]).
const POSTGRES_SETTINGS: &[&str] = &[
    "SET statement_timeout = '15s'",
    "SET lock_timeout = '10s'",
    "SET idle_in_transaction_session_timeout = '30s'",
];

/// Longest wait for a pool connection before [`StoreError::Busy`] (was 30 s: clients gave up
/// first and saw a hang, not an answer).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Splits a URL into backend and the URL sqlx should open.
///
/// # Errors
/// [`StoreError::UnsupportedUrl`] for any scheme other than `sqlite://`, `postgres://` or
/// `postgresql://`, and for bare paths.
pub fn parse_url(url: &str) -> Result<(Backend, String), StoreError> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        if rest.is_empty() {
            return Err(StoreError::UnsupportedUrl("sqlite (no path)".into()));
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut u = format!("sqlite://{path}");
        if query.is_empty() {
            u.push_str("?mode=rwc");
        } else {
            u.push('?');
            u.push_str(query);
            if !query.contains("mode=") {
                u.push_str("&mode=rwc");
            }
        }
        Ok((Backend::Sqlite, u))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_string()))
    } else {
        let scheme = url
            .split_once("://")
            .map_or("(none: a bare path)", |(s, _)| s);
        Err(StoreError::UnsupportedUrl(scheme.to_string()))
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    Some(rest.split_once('?').map_or(rest, |(p, _)| p))
}

/// Creates the SQLite file `path` empty (a valid empty database) readable by its owner only
/// (mode 0600) when it does not exist, so that its `-wal` and `-shm` files, which SQLite
/// creates with the database's mode, are private too: they hold wrapped DEKs, blind indexes and
/// the audit log. An existing file is left as it is.
///
/// # Errors
/// I/O errors other than the file existing already.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl Store {
    /// Opens (creating, for SQLite) the database at `url` and applies migrations.
    ///
    /// # Errors
    /// Unsupported URL, I/O creating the SQLite directory, connection or migration failure.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, None).await
    }

    /// Like [`Store::connect`] with an explicit pool size.
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn connect_with(url: &str, max_connections: Option<u32>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, sqlx_url) = parse_url(url)?;
        if backend == Backend::Sqlite {
            if let Some(path) = sqlite_path(&sqlx_url).map(std::path::Path::new) {
                if let Some(parent) = path.parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)?;
                    }
                }
                // Only where the URL lets the store create the database (`mode=rwc`), and not
                // for a percent-encoded path (sqlx decodes it; this would not).
                let plain = !path.to_string_lossy().starts_with(':')
                    && !path.to_string_lossy().contains('%');
                if sqlx_url.contains("mode=rwc") && plain {
                    create_private(path)?;
                }
            }
        }
        let is_sqlite = backend == Backend::Sqlite;
        let health = Arc::new(Health::new());
        let retire = Arc::clone(&health);
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.unwrap_or(if is_sqlite { 8 } else { 16 }))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A ping before each acquire finds PostgreSQL connections that died (a restart);
            // a SQLite connection is the file in this process, so the ping is a round trip to
            // its worker thread for nothing (a tenth of an inclusion proof's time, issue 15).
            .test_before_acquire(!is_sqlite)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    let settings = if is_sqlite {
                        SQLITE_PRAGMAS
                    } else {
                        POSTGRES_SETTINGS
                    };
                    for setting in settings {
                        conn.execute(*setting).await?;
                    }
                    Ok(())
                })
            })
            // Once a storage fault is over, connections opened during it are replaced (see
            // `Health::reusable`).
            .before_acquire(move |_conn, meta| {
                let keep = retire.reusable(meta.age);
                Box::pin(async move { Ok(keep) })
            })
            .connect(&sqlx_url)
            .await?;
        // SQLite: while any connection of this process has the database open, a new one shares
        // its WAL index (the -shm mapping); when the last one closes, the next must set the index
        // up again, which writes. Write transactions that fail close their connection, so during
        // a storage fault the pool could drain to nothing and then be unable to open any
        // connection, reads included, each waiting out the acquire timeout. One idle connection
        // outside the pool keeps the index set up.
        let keeper = if is_sqlite {
            Some(pool.acquire().await?.detach())
        } else {
            None
        };
        let store = Self {
            pool: GuardedPool::new(pool),
            backend,
            write_lock: is_sqlite.then(|| Arc::new(Mutex::new(()))),
            health,
            keeper: Arc::new(std::sync::Mutex::new(keeper)),
            audit_key: Arc::default(),
            shards: Arc::new(std::sync::atomic::AtomicU32::new(1)),
            wanted_shards: Arc::new(std::sync::atomic::AtomicU32::new(0)),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending forward-only migrations (same version numbers on both backends).
    ///
    /// # Errors
    /// [`StoreError::Migrate`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(self.pool.get()?).await?,
            Backend::Postgres => {
                // A migration may rewrite a large table, and waits for other instances'
                // migrations on an advisory lock: no statement or lock timeout on its
                // connection, which is then closed rather than returned to the pool.
                let mut conn = self.pool.get()?.acquire().await?;
                conn.execute("SET statement_timeout = 0").await?;
                conn.execute("SET lock_timeout = 0").await?;
                let mut conn = conn.detach();
                let run = POSTGRES_MIGRATOR.run(&mut conn).await;
                let _ = sqlx::Connection::close(conn).await;
                run?;
            }
        }
        Ok(())
    }

    /// Versions of this build's migrations that the database has not applied (successfully),
    /// oldest first; empty when the schema is current. Used by readiness (`GET /readyz`): an
    /// instance whose database is behind its code is not ready.
    ///
    /// # Errors
    /// Database failure (unreachable, or no migration table at all).
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(self.pool.get()?)
                .await?;
        Ok(migrator
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// A round trip to the database (`SELECT 1`): whether it is reachable now.
    ///
    /// # Errors
    /// Database failure.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.pool.get()?).await?;
        Ok(())
    }

    /// The backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool (waits for connections to return). Refused (debug builds panic) while
    /// the calling task holds a write transaction: its connection would never return.
    pub async fn close(&self) {
        if let Ok(pool) = self.pool.get() {
            pool.close().await;
        }
        let keeper = self
            .keeper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(c) = keeper {
            let _ = c.close().await;
        }
    }

    /// SQLite only: folds the WAL into the main file and truncates it (used before scanning the
    /// file in tests and after erasure). No-op on PostgreSQL.
    ///
    /// # Errors
    /// Database failure.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE);")
                .execute(self.pool.get()?)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_schemes_and_bare_paths_are_refused() {
        assert!(matches!(
            parse_url("mysql://x/y"),
            Err(StoreError::UnsupportedUrl(_))
        ));
        assert!(matches!(
            parse_url("./data/pivault.db"),
            Err(StoreError::UnsupportedUrl(_))
        ));
        assert!(matches!(
            parse_url("sqlite://"),
            Err(StoreError::UnsupportedUrl(_))
        ));
        assert_eq!(
            parse_url("sqlite://./data/p.db").ok(),
            Some((Backend::Sqlite, "sqlite://./data/p.db?mode=rwc".into()))
        );
        assert_eq!(
            parse_url("postgres://h/db").ok().map(|x| x.0),
            Some(Backend::Postgres)
        );
    }
}
