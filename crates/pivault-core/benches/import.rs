//! Import throughput of the full zh_CN-10k data set (76,855 rows, the 2,000 tickets included)
//! into a fresh SQLite store, in rows/s (criterion's "elements"). Run:
//! `cargo bench -p pivault-core --bench import`.
//!
//! Each iteration creates a new database file and master key in a temp dir, so it measures the
//! whole first import: parsing, validation, sealing, blind indexing, audit chaining, writes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pivault_core::import::{import_dir, NoProgress};
use pivault_core::Vault;
use pivault_crypto::{KeyRing, MasterSecret, Suite};
use pivault_domain::clock::SystemClock;
use pivault_store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn data_dir() -> PathBuf {
    std::env::var_os("PIVAULT_BENCH_DATA").map_or_else(pivault_testkit::data_dir, PathBuf::from)
}

async fn one_import(data: &Path) -> (u64, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let policy = pivault_testkit::data::load_policy();
    let url = std::env::var("PIVAULT_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("pivault.db").display()));
    let store = Store::connect(&url).await.unwrap();
    let vault = Vault::new(
        store.clone(),
        KeyRing::new(MasterSecret::generate(), Suite::Aes256Gcm),
        policy,
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let t = Instant::now();
    let rep = import_dir(&vault, data, &dir.path().join("rejects"), &NoProgress)
        .await
        .unwrap();
    let took = t.elapsed();
    store.close().await;
    (rep.rows(), took)
}

fn bench(c: &mut Criterion) {
    let data = data_dir();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rows, _) = rt.block_on(one_import(&data));
    let mut g = c.benchmark_group("import");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(40));
    g.throughput(Throughput::Elements(rows));
    g.bench_function("zh_CN-10k full import (sqlite)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.block_on(one_import(&data)).1;
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
