//! Test support: throwaway PostgreSQL databases for the conformance suite, the HTTP suite and
//! the multi-instance tests.
//!
//! The PostgreSQL server comes from [`TEST_DATABASE_URL_VAR`] (`PIVAULT_TEST_DATABASE_URL`, a
//! maintenance URL such as `postgres://postgres@127.0.0.1:5432/postgres`). Every
//! [`TestDatabase`] is a fresh database named `pivault_t_<pid>_<random>` and is dropped
//! (`DROP DATABASE … WITH (FORCE)`, PostgreSQL 13+) when the value is dropped, also while a
//! failing test unwinds. Databases left behind by killed test processes are recognized by the
//! pid in their name and dropped by the next run.
//!
//! Nothing here is used by the service itself.

use crate::StoreError;
use sqlx::{Connection, Executor};
use std::time::Duration;

/// Environment variable naming the PostgreSQL maintenance URL the tests may create databases
/// through. Unset: PostgreSQL tests are skipped with a printed line (CI always sets it).
pub const TEST_DATABASE_URL_VAR: &str = "PIVAULT_TEST_DATABASE_URL";

/// The maintenance URL from [`TEST_DATABASE_URL_VAR`], if set and non-empty.
#[must_use]
pub fn test_database_url() -> Option<String> {
    std::env::var(TEST_DATABASE_URL_VAR)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Writes `SKIPPED <what>: PIVAULT_TEST_DATABASE_URL is not set` to the process's stderr,
/// bypassing the test harness's output capture, so a skipped PostgreSQL test is visible.
pub fn print_skip(what: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {what}: {TEST_DATABASE_URL_VAR} is not set (CI sets it; see .ci/run)"
    );
}

/// `url` with its database name (the path) replaced by `db`; query parameters are kept.
#[must_use]
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn valid_db_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

async fn admin_exec(admin_url: &str, sql: &str) -> Result<(), StoreError> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin_url).await?;
    let r = conn.execute(sql).await.map(|_| ());
    let _ = conn.close().await;
    Ok(r?)
}

/// Drops databases named `pivault_t_<pid>_…` whose process no longer runs (Linux only: needs
/// `/proc`). Called once per process before the first database is created.
async fn drop_stale(admin_url: &str) -> Result<(), StoreError> {
    if !std::path::Path::new("/proc/self").exists() {
        return Ok(());
    }
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin_url).await?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'pivault\\_t\\_%'",
    )
    .fetch_all(&mut conn)
    .await?;
    let _ = conn.close().await;
    for name in names {
        let pid = name
            .strip_prefix("pivault_t_")
            .and_then(|r| r.split('_').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() && valid_db_name(&name) {
                let _ = admin_exec(
                    admin_url,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await;
            }
        }
    }
    Ok(())
}

/// A fresh PostgreSQL database, dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database through the maintenance URL `admin_url` (no migrations run).
    ///
    /// # Errors
    /// Connection failure or a refused `CREATE DATABASE`.
    pub async fn create(admin_url: &str) -> Result<Self, StoreError> {
        Self::create_from(admin_url, None).await
    }

    /// Creates a database as a copy of `template` (`CREATE DATABASE … TEMPLATE …`, a file-level
    /// copy: far faster than importing again). The template must have no open connections;
    /// a concurrent copy is retried for up to 30 s.
    ///
    /// # Errors
    /// Connection failure, a refused `CREATE DATABASE`, or an invalid template name.
    pub async fn create_from(admin_url: &str, template: Option<&str>) -> Result<Self, StoreError> {
        static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        CLEANED
            .get_or_init(|| async {
                let _ = drop_stale(admin_url).await;
            })
            .await;
        let suffix = uuid_like();
        let name = format!("pivault_t_{}_{suffix}", std::process::id());
        let sql = match template {
            None => format!("CREATE DATABASE {name}"),
            Some(t) if valid_db_name(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            Some(_) => return Err(StoreError::Conflict("invalid template database name")),
        };
        let mut tries = 0;
        loop {
            match admin_exec(admin_url, &sql).await {
                Ok(()) => break,
                // "source database … is being accessed by other users": another copy of the
                // template is in flight.
                Err(StoreError::Db(e))
                    if template.is_some()
                        && tries < 300
                        && e.to_string().contains("being accessed by other users") =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Self {
            url: with_database(admin_url, &name),
            admin_url: admin_url.to_string(),
            name,
        })
    }

    /// The database's URL (the maintenance URL with the database name replaced).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop may run inside a runtime (or while unwinding): do the async work on a thread of
        // its own with its own runtime, and wait for it.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(admin_exec(&admin, &sql));
            }
        })
        .join();
    }
}

/// Every value a `SELECT` can see in the store's tables, concatenated: BLOB/BYTEA raw, text
/// as UTF-8, integers in decimal, each followed by a NUL. For tests that search the database
/// for PI or key material in clear on a backend that is not one file (PostgreSQL). Note that it
/// sees live rows only, not dead tuples awaiting `VACUUM`.
///
/// # Errors
/// Database failure.
pub async fn visible_bytes(store: &crate::Store) -> Result<Vec<u8>, StoreError> {
    use sqlx::Row;
    const TABLES: [&str; 10] = [
        "subjects",
        "subject_keys",
        "fields",
        "blind_index",
        "consent_events",
        "api_keys",
        "policy_versions",
        "audit_head",
        "audit_log",
        "vault_meta",
    ];
    let mut out = Vec::new();
    for t in TABLES {
        let rows = sqlx::query(&format!("SELECT * FROM {t}"))
            .fetch_all(store.pool.get()?)
            .await?;
        for r in &rows {
            for i in 0..r.len() {
                if let Ok(b) = r.try_get::<Vec<u8>, _>(i) {
                    out.extend_from_slice(&b);
                } else if let Ok(s) = r.try_get::<String, _>(i) {
                    out.extend_from_slice(s.as_bytes());
                } else if let Ok(n) = r.try_get::<i64, _>(i) {
                    out.extend_from_slice(n.to_string().as_bytes());
                }
                out.push(0);
            }
        }
    }
    Ok(out)
}

/// Points the audit chain head at (`seq`, `hash`) and leaves its MAC alone, as someone who can
/// write the database but does not hold the key would (tests of the keyed head).
///
/// # Errors
/// Database failure.
pub async fn move_head_without_key(
    store: &crate::Store,
    seq: i64,
    hash: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(hash.to_vec())
        .execute(store.pool.get()?)
        .await?;
    Ok(())
}

/// 16 lowercase hex characters from the OS-seeded hasher and the clock (names, not secrets).
fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "y"),
            "postgres://u:p@h/y?sslmode=disable"
        );
        assert_eq!(with_database("postgresql://h", "z"), "postgresql://h/z");
    }
}
