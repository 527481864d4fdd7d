//! Prints seal+open throughput of 1 KiB fields: raw ring AES-256-GCM (fixed key, counter
//! nonce, no AAD, in-place buffer) versus `Dek::seal` + `Dek::open` with a full AAD, for
//! AES-256-GCM and SM4-GCM, and the ratio ours/raw. Numbers for BENCHMARKS.md.
//!
//! Run: `cargo run --release -p pivault-crypto --example seal_open_ratio [seconds]`
//! (default 2 s per case).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use pivault_crypto::{Aad, Dek, Suite};
use ring::aead::{Aad as RingAad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

const LEN: usize = 1024;

/// Runs `f` in batches until `dur` has passed; returns operations per second.
fn rate(dur: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        f(); // warm-up
    }
    let start = Instant::now();
    let mut ops: u64 = 0;
    while start.elapsed() < dur {
        for _ in 0..256 {
            f();
        }
        ops += 256;
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let dur = Duration::from_secs_f64(secs);
    let plaintext = vec![0x5au8; LEN];

    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let mut counter: u64 = 0;
    let mut buf = Vec::with_capacity(LEN + 16);
    let raw = rate(dur, || {
        counter += 1;
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&counter.to_be_bytes());
        buf.clear();
        buf.extend_from_slice(black_box(&plaintext));
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(n), RingAad::empty(), &mut buf)
            .unwrap();
        let pt = key
            .open_in_place(Nonce::assume_unique_for_key(n), RingAad::empty(), &mut buf)
            .unwrap();
        black_box(pt.len());
    });

    let ours = |suite: Suite| {
        let dek = Dek::from_bytes("dek-0123456789abcdef01234567", suite, [7u8; 32]);
        let aad = Aad {
            subject_id: "6f1c2b9e-3a4d-4e5f-8a7b-1c2d3e4f5a6b",
            category: "user.contact.address",
            field: "postal_address",
            key_id: dek.key_id(),
        };
        rate(dur, || {
            let sealed = dek.seal(&aad, black_box(&plaintext));
            let opened = dek.open(&aad, &sealed).unwrap();
            black_box(opened.len());
        })
    };
    let aes = ours(Suite::Aes256Gcm);
    let sm4 = ours(Suite::Sm4Gcm);

    let mib = |ops: f64| ops * LEN as f64 / (1024.0 * 1024.0);
    println!("seal+open of {LEN}-byte plaintexts, {secs} s per case (1 op = 1 seal + 1 open)");
    println!("{:<32} {:>12} {:>12}", "case", "ops/s", "MiB/s");
    for (name, ops) in [
        ("raw ring AES-256-GCM", raw),
        ("Dek AES-256-GCM (full AAD)", aes),
        ("Dek SM4-GCM (full AAD)", sm4),
    ] {
        println!("{name:<32} {ops:>12.0} {:>12.1}", mib(ops));
    }
    println!("ratio ours/raw AES-256-GCM: {:.3}", aes / raw);
    println!("ratio ours SM4-GCM/raw AES-256-GCM: {:.3}", sm4 / raw);
}
