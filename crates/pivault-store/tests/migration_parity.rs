//! Migration parity: the SQLite and PostgreSQL migrations must build the same schema, since the
//! store runs the same SQL on both (see the crate docs).
//!
//! Migrates a fresh SQLite file and a fresh PostgreSQL database (a throwaway database through
//! `PIVAULT_TEST_DATABASE_URL`), reads each catalog back and compares: the same tables; per
//! table the same columns (name, nullability, a normalized type class); the same explicitly
//! created indexes by name, with the same columns; and the same migration versions in both
//! migration folders and in both databases' `_sqlx_migrations`. With the variable set,
//! PostgreSQL being unreachable fails the test; without it only the SQLite side and the
//! folders are checked, and the test says so on stderr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_store::Store;
use pivault_testkit::pg::{test_database_url, TestDatabase, TEST_DATABASE_URL_VAR};
use sqlx::{Connection, Row};
use std::collections::{BTreeMap, BTreeSet};

/// A column as both backends can describe it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    name: String,
    nullable: bool,
    class: &'static str,
}

/// A schema: tables → columns (in name order), indexes → (table, columns in index order),
/// applied migration versions.
#[derive(Debug, Default, PartialEq, Eq)]
struct Schema {
    tables: BTreeMap<String, Vec<Column>>,
    indexes: BTreeMap<String, (String, Vec<String>)>,
    applied: BTreeSet<i64>,
}

/// The type class of a declared (SQLite) or catalog (PostgreSQL) type: `integer`, `text`,
/// `blob`, `real`, `bool`, or `other:<type>` (which then has to match exactly).
fn class(ty: &str) -> &'static str {
    let t = ty.to_ascii_lowercase();
    if t.contains("int") || t.contains("serial") {
        "integer"
    } else if t.contains("text") || t.contains("char") {
        "text"
    } else if t.contains("blob") || t == "bytea" {
        "blob"
    } else if t.contains("real") || t.contains("double") || t.contains("float") {
        "real"
    } else if t.starts_with("bool") {
        "bool"
    } else {
        Box::leak(format!("other:{t}").into_boxed_str())
    }
}

/// Migration versions in `migrations/<backend>`: the numeric prefix of each `*.sql` file.
fn folder_versions(backend: &str) -> BTreeSet<i64> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .map(|n| {
            let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
            digits
                .parse()
                .unwrap_or_else(|_| panic!("migration {n} has no version prefix"))
        })
        .collect()
}

async fn sqlite_schema(url: &str) -> Schema {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let mut s = Schema::default();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for t in tables {
        let rows = sqlx::query(&format!("PRAGMA table_info(\"{t}\")"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let mut cols: Vec<Column> = rows
            .iter()
            .map(|r| {
                let ty: String = r.try_get("type").unwrap();
                let notnull: i64 = r.try_get("notnull").unwrap();
                let pk: i64 = r.try_get("pk").unwrap();
                Column {
                    name: r.try_get("name").unwrap(),
                    // A PRIMARY KEY column is NOT NULL on PostgreSQL; SQLite leaves `notnull`
                    // at 0 for it (an INTEGER PRIMARY KEY is the rowid, never NULL).
                    nullable: notnull == 0 && pk == 0,
                    class: class(&ty),
                }
            })
            .collect();
        cols.sort();
        s.tables.insert(t, cols);
    }
    // Explicit CREATE INDEX only (`sql IS NULL`: indexes behind PRIMARY KEY / UNIQUE).
    let indexes = sqlx::query(
        "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for r in indexes {
        let name: String = r.try_get("name").unwrap();
        let table: String = r.try_get("tbl_name").unwrap();
        let cols = sqlx::query(&format!("PRAGMA index_info(\"{name}\")"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let mut cols: Vec<(i64, String)> = cols
            .iter()
            .map(|c| (c.try_get("seqno").unwrap(), c.try_get("name").unwrap()))
            .collect();
        cols.sort();
        s.indexes
            .insert(name, (table, cols.into_iter().map(|c| c.1).collect()));
    }
    s.applied = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let _ = conn.close().await;
    s
}

async fn postgres_schema(url: &str) -> Schema {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let mut s = Schema::default();
    let cols = sqlx::query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name, \
         is_nullable::text AS is_nullable, data_type::text AS data_type \
         FROM information_schema.columns WHERE table_schema = current_schema() \
         AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for r in cols {
        let table: String = r.try_get("table_name").unwrap();
        let ty: String = r.try_get("data_type").unwrap();
        let nullable: String = r.try_get("is_nullable").unwrap();
        s.tables.entry(table).or_default().push(Column {
            name: r.try_get("column_name").unwrap(),
            nullable: nullable == "YES",
            class: class(&ty),
        });
    }
    for cols in s.tables.values_mut() {
        cols.sort();
    }
    // Explicit CREATE INDEX only: an index backing a constraint (PRIMARY KEY, UNIQUE) has a
    // pg_constraint row pointing at it.
    let rows = sqlx::query(
        "SELECT i.relname::text AS index_name, t.relname::text AS table_name, \
         a.attname::text AS column_name, k.n AS position \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace ns ON ns.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE ns.nspname = current_schema() AND t.relname <> '_sqlx_migrations' \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
         ORDER BY 1, 4",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for r in rows {
        let name: String = r.try_get("index_name").unwrap();
        let table: String = r.try_get("table_name").unwrap();
        let column: String = r.try_get("column_name").unwrap();
        s.indexes
            .entry(name)
            .or_insert_with(|| (table, Vec::new()))
            .1
            .push(column);
    }
    s.applied = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let _ = conn.close().await;
    s
}

/// Panics with every difference between the two schemas, not just the first.
fn assert_same(sqlite: &Schema, postgres: &Schema) {
    let mut diffs = Vec::new();
    let names = |m: &BTreeMap<String, Vec<Column>>| m.keys().cloned().collect::<BTreeSet<_>>();
    let (ts, tp) = (names(&sqlite.tables), names(&postgres.tables));
    for t in ts.symmetric_difference(&tp) {
        let side = if ts.contains(t) {
            "SQLite"
        } else {
            "PostgreSQL"
        };
        diffs.push(format!("table {t} only on {side}"));
    }
    for t in ts.intersection(&tp) {
        let (a, b) = (&sqlite.tables[t], &postgres.tables[t]);
        if a != b {
            diffs.push(format!(
                "table {t} columns differ:\n  SQLite:     {a:?}\n  PostgreSQL: {b:?}"
            ));
        }
    }
    if sqlite.indexes != postgres.indexes {
        diffs.push(format!(
            "indexes differ:\n  SQLite:     {:?}\n  PostgreSQL: {:?}",
            sqlite.indexes, postgres.indexes
        ));
    }
    if sqlite.applied != postgres.applied {
        diffs.push(format!(
            "applied migrations differ: SQLite {:?}, PostgreSQL {:?}",
            sqlite.applied, postgres.applied
        ));
    }
    assert!(
        diffs.is_empty(),
        "the migrations build different schemas:\n{}",
        diffs.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_migrations_build_the_same_schema() {
    let sqlite_versions = folder_versions("sqlite");
    let postgres_versions = folder_versions("postgres");
    assert!(!sqlite_versions.is_empty(), "no SQLite migrations found");
    assert_eq!(
        sqlite_versions, postgres_versions,
        "migrations/sqlite and migrations/postgres hold different versions"
    );

    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("parity.db").display());
    let store = Store::connect(&sqlite_url).await.unwrap();
    store.close().await;
    let sqlite = sqlite_schema(&format!("{sqlite_url}?mode=ro")).await;
    assert_eq!(
        sqlite.applied, sqlite_versions,
        "a fresh SQLite database did not apply every migration in migrations/sqlite"
    );
    assert!(
        sqlite.tables.contains_key("subjects") && sqlite.indexes.contains_key("audit_log_subject"),
        "the SQLite catalog read back nothing sensible: {sqlite:?}"
    );

    let Some(admin) = test_database_url() else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "migration parity: SQLite only ({TEST_DATABASE_URL_VAR} is not set): compared the \
             migration folders and the migrated SQLite schema, not PostgreSQL's"
        );
        return;
    };
    // Set: PostgreSQL must answer; anything else fails the test.
    // (`TestDatabase::create` panics, naming the URL, when PostgreSQL does not answer.)
    let db = TestDatabase::create(&admin).await;
    let store = Store::connect_with(db.url(), Some(2)).await.unwrap();
    store.close().await;
    let postgres = postgres_schema(db.url()).await;
    assert_eq!(
        postgres.applied, postgres_versions,
        "a fresh PostgreSQL database did not apply every migration in migrations/postgres"
    );
    assert_same(&sqlite, &postgres);
}
