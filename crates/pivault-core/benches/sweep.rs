//! Issue 12 "Speed": the retention sweep over 1,000,000 expired records (orders and web-log
//! lines mixed), on SQLite and PostgreSQL, beside a plain `DELETE … WHERE (subject_id, record)
//! IN (…)` of the same rows in the same batch size. Not a test: `cargo test` does not run it.
//!
//! Generate a data set (about 2 minutes), then run from the repository root:
//!
//! ```text
//! pip install faker==40.54.0
//! python3 ../shared/tools/gen_dataset.py /work/bench-data/gen200k --users 200000
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p pivault-core --bench sweep -- \
//!   --data /work/bench-data/gen200k --work /work/bench-data/sweep \
//!   [--records 1000000] [--batch 2000] [--postgres postgres://postgres@127.0.0.1:5432/postgres]
//! ```
//!
//! Preparation (not timed, kept in `--work` and reused by the next run): `users.csv`,
//! `orders.csv` and the first `records − orders` lines of `access.log` are imported with the
//! clock at the data set's date, on each backend. Each timed run starts from a fresh copy of
//! that store (a file copy on SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL) and moves the
//! clock five years on, so every record is due: orders are anonymized (E-Commerce Law Art. 31
//! has run out), web-log lines are anonymized, and each record gets its audit entry, in
//! transactions of `--batch` records. The baseline deletes the same field rows and retention
//! items by (subject, record) in the same batches, with no anonymization and no audit entry.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use pivault_core::import::{import_dir, NoProgress};
use pivault_core::{SweepOptions, Vault};
use pivault_crypto::{KeyRing, MasterSecret, Suite};
use pivault_domain::clock::FixedClock;
use pivault_domain::policy::Policy;
use pivault_store::Store;
use sqlx::Row;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The data set's date (the generator's NOW is 2026-11-29).
const DATA_NOW: i64 = 1_795_910_400;

struct Args {
    data: PathBuf,
    work: PathBuf,
    records: usize,
    batch: usize,
    postgres: Option<String>,
    limit: Option<u64>,
}

fn args() -> Args {
    let mut a = Args {
        data: PathBuf::from("/work/bench-data/gen200k"),
        work: PathBuf::from("/work/bench-data/sweep"),
        records: 1_000_000,
        batch: 2_000,
        postgres: None,
        limit: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--data" => a.data = it.next().unwrap().into(),
            "--work" => a.work = it.next().unwrap().into(),
            "--records" => a.records = it.next().unwrap().parse().unwrap(),
            "--batch" => a.batch = it.next().unwrap().parse().unwrap(),
            "--postgres" => a.postgres = it.next(),
            "--limit" => a.limit = it.next().map(|v| v.parse().unwrap()),
            "--bench" | "--postgres-only" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn policy() -> Policy {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.toml");
    Policy::parse(&std::fs::read_to_string(root).unwrap()).unwrap()
}

async fn vault(url: &str, key: &Path, at: i64) -> Vault {
    let (master, _) = MasterSecret::load_or_create(key).unwrap();
    let store = Store::connect(url).await.unwrap();
    let clock = Arc::new(FixedClock::new(
        time::OffsetDateTime::from_unix_timestamp(at).unwrap(),
    ));
    Vault::new(
        store,
        KeyRing::new(master, Suite::Aes256Gcm),
        policy(),
        clock,
    )
    .await
    .unwrap()
}

/// The import folder: users, orders, and enough web-log lines for `records` in all.
fn input(a: &Args) -> PathBuf {
    let dir = a.work.join("input");
    if dir.join("access.log").is_file() {
        return dir;
    }
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["users.csv", "orders.csv"] {
        std::fs::copy(a.data.join(f), dir.join(f)).unwrap();
    }
    let orders = std::io::BufReader::new(std::fs::File::open(a.data.join("orders.csv")).unwrap())
        .lines()
        .count()
        - 1;
    let lines = a.records.saturating_sub(orders);
    let src = std::io::BufReader::new(std::fs::File::open(a.data.join("access.log")).unwrap());
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("access.log")).unwrap());
    for l in src.lines().take(lines) {
        writeln!(out, "{}", l.unwrap()).unwrap();
    }
    out.flush().unwrap();
    eprintln!("input: {orders} orders + {lines} web-log lines");
    dir
}

async fn prepare(url: &str, key: &Path, input: &Path, rejects: &Path) {
    let v = vault(url, key, DATA_NOW).await;
    let t = Instant::now();
    let rep = import_dir(&v, input, rejects, &NoProgress).await.unwrap();
    eprintln!(
        "prepared {} rows in {:.1} s",
        rep.rows(),
        t.elapsed().as_secs_f64()
    );
    v.shutdown().await;
}

/// Times the sweep on a fresh copy; returns (records, seconds).
async fn timed_sweep(url: &str, key: &Path, batch: usize, limit: Option<u64>) -> (u64, f64) {
    let v = vault(url, key, DATA_NOW + 5 * 366 * 86_400).await;
    let opts = SweepOptions {
        batch,
        limit,
        actor: "bench:sweep".into(),
        ..SweepOptions::default()
    };
    let t = Instant::now();
    let rep = v.sweep(&opts, &|_| {}).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    v.shutdown().await;
    (rep.total(), secs)
}

/// The baseline on a fresh copy: the same records' field rows and items deleted by
/// (subject, record) in batches, in the sweep's order (subject by subject) and, on SQLite, with
/// the store's own settings (WAL, `synchronous=NORMAL`, `secure_delete`), nothing else.
/// Returns (records, seconds).
async fn timed_plain_delete(url: &str, batch: usize, limit: Option<u64>) -> (u64, f64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let pg = url.starts_with("postgres");
    if !pg {
        sqlx::raw_sql(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON; \
             PRAGMA cache_size=-65536;",
        )
        .execute(&pool)
        .await
        .unwrap();
    }
    let pairs: Vec<(String, String)> = sqlx::query(&format!(
        "SELECT subject_id, record FROM retention_items ORDER BY subject_id, record LIMIT {}",
        limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap())
    ))
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("subject_id"), r.get("record")))
    .collect();
    let t = Instant::now();
    for batch_pairs in pairs.chunks(batch) {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
        // Statements of 400 pairs, as the store's own bulk deletes: PostgreSQL plans one list
        // of thousands of pairs as a hash join over the whole table.
        for chunk in batch_pairs.chunks(400) {
            // The form that probes the primary key per pair on both backends (a bare
            // `IN (VALUES …)` scans the table on SQLite).
            let mut list = String::new();
            for i in 0..chunk.len() {
                if i > 0 {
                    list.push(',');
                }
                if pg {
                    list.push_str(&format!("(${},${})", 2 * i + 1, 2 * i + 2));
                } else {
                    list.push_str("(?,?)");
                }
            }
            for table in ["fields", "retention_items"] {
                let sql = format!(
                    "DELETE FROM {table} WHERE (subject_id, record) IN \
                     (SELECT column1, column2 FROM (VALUES {list}) AS v)"
                );
                let mut q = sqlx::query(&sql);
                for (s, r) in chunk {
                    q = q.bind(s).bind(r);
                }
                q.execute(&mut *conn).await.unwrap();
            }
        }
        sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    pool.close().await;
    (pairs.len() as u64, secs)
}

fn report(backend: &str, sweep: (u64, f64), plain: (u64, f64)) {
    let rs = sweep.0 as f64 / sweep.1;
    let rp = plain.0 as f64 / plain.1;
    println!(
        "{backend}: sweep {} records in {:.2} s = {:.0} records/s (anonymized + audited); plain DELETE {} records in {:.2} s = {:.0} records/s; ratio {:.2}x",
        sweep.0, sweep.1, rs, plain.0, plain.1, rp, rp / rs
    );
}

/// `VACUUM`s the prepared store when a migration left more than a tenth of it free (a
/// table rebuilt), so that each run copies and sweeps the store a fresh import would make.
async fn compact(db: &Path) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let free: i64 = sqlx::query("SELECT freelist_count AS n FROM pragma_freelist_count")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    let pages: i64 = sqlx::query("SELECT page_count AS n FROM pragma_page_count")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    if free * 10 > pages {
        let t = Instant::now();
        sqlx::raw_sql("VACUUM").execute(&pool).await.unwrap();
        eprintln!(
            "compacted the prepared store ({free} of {pages} pages free) in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    pool.close().await;
}

async fn run_sqlite(a: &Args, input: &Path) {
    let dir = a.work.join("sqlite");
    let db = dir.join("pivault.db");
    let key = dir.join("master.key");
    if !db.is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        prepare(
            &format!("sqlite://{}", db.display()),
            &key,
            input,
            &dir.join("rejects"),
        )
        .await;
    }
    // Bring the prepared store to the current schema once (a store prepared by an older
    // build is migrated here, not inside a timed run).
    Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap()
        .close()
        .await;
    compact(&db).await;
    let copy = |name: &str| {
        let p = dir.join(name);
        std::fs::copy(&db, &p).unwrap();
        // On disk before the timer starts: otherwise the sweep's first checkpoint `fsync`
        // pays for writing out the copy.
        std::fs::File::open(&p).unwrap().sync_all().unwrap();
        let _ = std::fs::remove_file(p.with_extension("db-wal"));
        format!("sqlite://{}", p.display())
    };
    let u = copy("sweep.db");
    let s = timed_sweep(&u, &key, a.batch, a.limit).await;
    println!(
        "SQLite sweep: {} records in {:.2} s = {:.0} records/s",
        s.0,
        s.1,
        s.0 as f64 / s.1
    );
    let u2 = copy("plain.db");
    let p = timed_plain_delete(&u2, a.batch, a.limit).await;
    report("SQLite", s, p);
    for f in ["sweep.db", "plain.db"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
}

async fn run_postgres(a: &Args, admin: &str, input: &Path) {
    sqlx::any::install_default_drivers();
    let dir = a.work.join("postgres");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("master.key");
    let base = admin.rsplit_once('/').unwrap().0.to_string();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(admin)
        .await
        .unwrap();
    let exists: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM pg_database WHERE datname = 'pivault_sweep_bench'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("n");
    if exists == 0 || !key.is_file() {
        sqlx::query("DROP DATABASE IF EXISTS pivault_sweep_bench")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("CREATE DATABASE pivault_sweep_bench")
            .execute(&pool)
            .await
            .unwrap();
        let _ = std::fs::remove_file(&key);
        prepare(
            &format!("{base}/pivault_sweep_bench"),
            &key,
            input,
            &dir.join("rejects"),
        )
        .await;
    }
    // The template at the current schema (see `run_sqlite`).
    Store::connect(&format!("{base}/pivault_sweep_bench"))
        .await
        .unwrap()
        .close()
        .await;
    let mut run = Vec::new();
    for name in ["pivault_sweep_bench_s", "pivault_sweep_bench_p"] {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(&format!(
            "CREATE DATABASE {name} TEMPLATE pivault_sweep_bench"
        ))
        .execute(&pool)
        .await
        .unwrap();
        run.push(format!("{base}/{name}"));
    }
    let s = timed_sweep(&run[0], &key, a.batch, a.limit).await;
    let p = timed_plain_delete(&run[1], a.batch, a.limit).await;
    report("PostgreSQL", s, p);
    for name in ["pivault_sweep_bench_s", "pivault_sweep_bench_p"] {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&pool)
            .await;
    }
}

fn main() {
    let mut a = args();
    let skip_sqlite = std::env::args().any(|x| x == "--postgres-only");
    // The per-record pass over exactly the prepared records: the sweep's later passes (fields
    // whose clock runs per subject, e.g. profiles of accounts inactive for years) are not what
    // is measured here.
    a.limit = a.limit.or(Some(a.records as u64));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let input = input(&a);
        if !skip_sqlite {
            run_sqlite(&a, &input).await;
        }
        if let Some(pg) = a.postgres.clone() {
            run_postgres(&a, &pg, &input).await;
        }
    });
}
