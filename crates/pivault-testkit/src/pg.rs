//! A fresh throwaway PostgreSQL database per test.
//!
//! The server comes from [`TEST_DATABASE_URL_VAR`] (`PIVAULT_TEST_DATABASE_URL`, a maintenance
//! URL such as `postgres://postgres@127.0.0.1:5432/postgres`). Every [`TestDatabase`] is a new
//! database named `pivault_t_<pid>_<random>`, dropped (`DROP DATABASE … WITH (FORCE)`,
//! PostgreSQL 13+) when the value is dropped, also while a failing test unwinds. Databases left
//! behind by killed test processes are recognized by the pid in their name and dropped by the
//! next run.
//!
//! Unset, the PostgreSQL tests do not run, and say so ([`print_skip`]: a `SKIPPED …` line on
//! the real stderr, which `.ci/run` turns into a failure). Set but unreachable, they fail:
//! every helper here panics with the URL and the error instead of skipping.

use sqlx::{Connection, Executor};
use std::io::Write;
use std::time::Duration;

/// Environment variable naming the PostgreSQL maintenance URL the tests create databases
/// through.
pub const TEST_DATABASE_URL_VAR: &str = "PIVAULT_TEST_DATABASE_URL";

/// The maintenance URL from [`TEST_DATABASE_URL_VAR`], if set and non-empty.
#[must_use]
pub fn test_database_url() -> Option<String> {
    std::env::var(TEST_DATABASE_URL_VAR)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Writes `SKIPPED <what>: PIVAULT_TEST_DATABASE_URL is not set …` on a line of its own to the
/// process's real stderr (past the test harness's capture), so a PostgreSQL test that did not
/// run is visible.
pub fn print_skip(what: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED {what}: {TEST_DATABASE_URL_VAR} is not set, this PostgreSQL test did not run \
         (CI sets it; see .ci/run)"
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

async fn connect(admin_url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    match sqlx::AnyConnection::connect(admin_url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "{TEST_DATABASE_URL_VAR} is set to {admin_url} but PostgreSQL there cannot be \
             reached: {e}. Start PostgreSQL, or unset the variable to leave the PostgreSQL \
             tests out (they then print SKIPPED)."
        ),
    }
}

async fn admin_exec(admin_url: &str, sql: &str) -> Result<(), sqlx::Error> {
    let mut conn = connect(admin_url).await;
    let r = conn.execute(sql).await.map(|_| ());
    let _ = conn.close().await;
    r
}

/// Drops databases named `pivault_t_<pid>_…` whose process no longer runs (Linux: `/proc`).
async fn drop_stale(admin_url: &str) {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let mut conn = connect(admin_url).await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'pivault\\_t\\_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
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
}

/// A fresh PostgreSQL database, dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// A fresh empty database on the server of [`TEST_DATABASE_URL_VAR`]; `None` (after
    /// printing `SKIPPED <what>`) when the variable is unset. Panics if it is set and the
    /// server cannot be reached or refuses.
    pub async fn for_test(what: &str) -> Option<Self> {
        let Some(admin) = test_database_url() else {
            print_skip(what);
            return None;
        };
        Some(Self::create(&admin).await)
    }

    /// Creates an empty database through the maintenance URL `admin_url` (no migrations run).
    /// Panics if the server cannot be reached or refuses.
    pub async fn create(admin_url: &str) -> Self {
        Self::create_from(admin_url, None).await
    }

    /// Creates a database as a copy of `template` (`CREATE DATABASE … TEMPLATE …`, a file-level
    /// copy: far faster than importing again). The template must have no open connections; a
    /// concurrent copy is retried for up to 30 s. Panics on failure.
    pub async fn create_from(admin_url: &str, template: Option<&str>) -> Self {
        static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        CLEANED.get_or_init(|| drop_stale(admin_url)).await;
        let name = format!("pivault_t_{}_{}", std::process::id(), random_suffix());
        let sql = match template {
            None => format!("CREATE DATABASE {name}"),
            Some(t) => {
                assert!(valid_db_name(t), "invalid template database name {t:?}");
                format!("CREATE DATABASE {name} TEMPLATE {t}")
            }
        };
        let mut tries = 0;
        loop {
            match admin_exec(admin_url, &sql).await {
                Ok(()) => break,
                // "source database … is being accessed by other users": another copy of the
                // template is in flight.
                Err(e)
                    if template.is_some()
                        && tries < 300
                        && e.to_string().contains("being accessed by other users") =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{sql} on {admin_url} failed: {e}"),
            }
        }
        Self {
            url: with_database(admin_url, &name),
            admin_url: admin_url.to_string(),
            name,
        }
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
                let _ = rt.block_on(async {
                    sqlx::any::install_default_drivers();
                    let mut conn = sqlx::AnyConnection::connect(&admin).await?;
                    conn.execute(sql.as_str()).await?;
                    conn.close().await
                });
            }
        })
        .join();
    }
}

/// 16 lowercase hex characters from the OS-seeded hasher and the clock (names, not secrets).
fn random_suffix() -> String {
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
