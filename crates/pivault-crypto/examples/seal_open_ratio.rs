//! Prints seal+open throughput of 1 KiB fields: raw ring AES-256-GCM (fixed key, counter
//! nonce, no AAD, in-place buffer) versus `Dek::seal` + `Dek::open` with a full AAD, for
//! AES-256-GCM and SM4-GCM, and the ratios. For before/after, the RustCrypto SM4-GCM that `Dek`
//! used before pivault-sm4 (`aes_gcm::AesGcm<sm4::Sm4, U12>`) is timed doing the same work as
//! `Dek` (random nonce, same AAD bytes, fresh output buffer, a copy to open in). Numbers for
//! BENCHMARKS.md.
//!
//! Run: `cargo run --release -p pivault-crypto --example seal_open_ratio [seconds]`
//! (default 2 s per case). The cases take turns in 5 rounds of `seconds / 5` each and each
//! case's rate is its median over the rounds, so a burst of load on a shared machine skews one
//! round of every case rather than one case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use pivault_crypto::{Aad, Dek, Suite};
use rand::RngCore;
use ring::aead::{Aad as RingAad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

const LEN: usize = 1024;

/// A case: its name, one operation, and its rate in each round.
type Case<'a> = (&'static str, &'a mut dyn FnMut(), Vec<f64>);
const ROUNDS: usize = 5;

/// Runs `f` in batches until `dur` has passed; returns operations per second.
fn rate(dur: Duration, f: &mut dyn FnMut()) -> f64 {
    for _ in 0..200 {
        f(); // warm-up
    }
    let start = Instant::now();
    let mut ops: u64 = 0;
    while start.elapsed() < dur {
        for _ in 0..64 {
            f();
        }
        ops += 64;
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let slice = Duration::from_secs_f64(secs / ROUNDS as f64);
    let plaintext = vec![0x5au8; LEN];

    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let mut counter: u64 = 0;
    let mut buf = Vec::with_capacity(LEN + 16);
    let mut raw = || {
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
    };

    const KEY_ID: &str = "dek-0123456789abcdef01234567";
    let aad = Aad {
        subject_id: "6f1c2b9e-3a4d-4e5f-8a7b-1c2d3e4f5a6b",
        category: "user.contact.address",
        field: "postal_address",
        key_id: KEY_ID,
    };
    let dek_aes = Dek::from_bytes(KEY_ID, Suite::Aes256Gcm, [7u8; 32]);
    let dek_sm4 = Dek::from_bytes(KEY_ID, Suite::Sm4Gcm, [7u8; 32]);
    let ours = |dek: &Dek| {
        let sealed = dek.seal(&aad, black_box(&plaintext));
        let opened = dek.open(&aad, &sealed).unwrap();
        black_box(opened.len());
    };
    let mut aes = || ours(&dek_aes);
    let mut sm4 = || ours(&dek_sm4);

    // Before: RustCrypto's SM4 in aes-gcm's GCM, doing what `Dek` does.
    let old = aes_gcm::AesGcm::<sm4::Sm4, U12>::new(&[7u8; 16].into());
    let aad_bytes = aad.to_bytes();
    let mut before = || {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(LEN + 29);
        out.push(Suite::Sm4Gcm.id());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(black_box(&plaintext));
        let tag = old
            .encrypt_in_place_detached(&nonce.into(), &aad_bytes, &mut out[13..])
            .unwrap();
        out.extend_from_slice(&tag);
        let mut pt = out[13..13 + LEN].to_vec();
        old.decrypt_in_place_detached(
            &nonce.into(),
            &aad_bytes,
            &mut pt,
            aes_gcm::Tag::<aes_gcm::aead::consts::U16>::from_slice(&out[13 + LEN..]),
        )
        .unwrap();
        black_box(pt.len());
    };

    let mut cases: [Case; 4] = [
        ("raw ring AES-256-GCM", &mut raw, Vec::new()),
        ("Dek AES-256-GCM (full AAD)", &mut aes, Vec::new()),
        ("Dek SM4-GCM (full AAD)", &mut sm4, Vec::new()),
        ("RustCrypto SM4-GCM (before)", &mut before, Vec::new()),
    ];
    for _ in 0..ROUNDS {
        for (_, f, rates) in cases.iter_mut() {
            rates.push(rate(slice, *f));
        }
    }
    let m: Vec<f64> = cases.iter().map(|c| median(c.2.clone())).collect();
    let (raw, aes, sm4, before) = (m[0], m[1], m[2], m[3]);

    let mib = |ops: f64| ops * LEN as f64 / (1024.0 * 1024.0);
    println!(
        "seal+open of {LEN}-byte plaintexts, {secs} s per case in {ROUNDS} rounds, medians \
         (1 op = 1 seal + 1 open); SM4 backend: {}",
        pivault_sm4::Backend::best()
    );
    println!("{:<32} {:>12} {:>12}", "case", "ops/s", "MiB/s");
    for (c, ops) in cases.iter().zip(&m) {
        println!("{:<32} {ops:>12.0} {:>12.1}", c.0, mib(*ops));
    }
    println!("ratio ours/raw AES-256-GCM: {:.3}", aes / raw);
    println!("ratio ours SM4-GCM/raw AES-256-GCM: {:.3}", sm4 / raw);
    println!("ratio ours SM4-GCM/ours AES-256-GCM: {:.3}", sm4 / aes);
    println!(
        "ratio ours SM4-GCM/RustCrypto SM4-GCM (before): {:.1}",
        sm4 / before
    );
}
