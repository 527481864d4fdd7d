//! Throughput of each SM4 backend this CPU can run: ECB over 1 KiB (64 blocks), one block at a
//! time, SM4-GCM sealing 1 KiB (aes-gcm's `AesGcm<Sm4>` and this crate's `Sm4Gcm`) and a 64-byte
//! field, with the RustCrypto `sm4` crate for comparison.
//!
//! Run: `cargo run --release -p pivault-sm4 --example sm4_speed [seconds]` (default 1 s a case).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::AesGcm;
use cipher::{BlockEncrypt, KeyInit};
use pivault_sm4::{Backend, Sm4, Sm4Gcm};

/// Runs `f` (which handles `bytes` bytes) until `dur` passes; returns MiB/s.
fn rate(dur: Duration, bytes: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..100 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        for _ in 0..64 {
            f();
        }
        n += 64;
    }
    n as f64 * bytes as f64 / start.elapsed().as_secs_f64() / (1024.0 * 1024.0)
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let dur = Duration::from_secs_f64(secs);
    let key = [7u8; 16];
    println!("best backend: {}", Backend::best());
    println!(
        "{:<14} {:>12} {:>12} {:>14} {:>14} {:>14}",
        "backend", "ECB MiB/s", "1-blk MiB/s", "AesGcm 1K", "Sm4Gcm 1K", "Sm4Gcm 64 B"
    );
    let nonce = aes_gcm::Nonce::<U12>::from([1u8; 12]);
    for b in Backend::ALL.into_iter().filter(|b| b.is_available()) {
        let c = Sm4::new_with_backend(&key, b).unwrap();
        let mut blocks = vec![cipher::Block::<Sm4>::default(); 64];
        let ecb = rate(dur, 1024, || c.encrypt_blocks(black_box(&mut blocks)));
        let mut one = cipher::Block::<Sm4>::default();
        let single = rate(dur, 16, || c.encrypt_block(black_box(&mut one)));
        let gcm = AesGcm::<Sm4, U12>::from(c.clone());
        let mut buf = vec![0u8; 1024];
        let g = rate(dur, 1024, || {
            black_box(
                gcm.encrypt_in_place_detached(&nonce, b"", black_box(&mut buf))
                    .unwrap(),
            );
        });
        let ours = Sm4Gcm::from(c.clone());
        let o = rate(dur, 1024, || {
            black_box(
                ours.encrypt_in_place_detached(&nonce, b"", black_box(&mut buf))
                    .unwrap(),
            );
        });
        let mut short = [0u8; 64];
        let sh = rate(dur, 64, || {
            black_box(
                ours.encrypt_in_place_detached(&nonce, b"", black_box(&mut short))
                    .unwrap(),
            );
        });
        println!(
            "{:<14} {ecb:>12.1} {single:>12.1} {g:>14.1} {o:>14.1} {sh:>14.1}",
            b.name()
        );
    }
    let r = sm4::Sm4::new(&key.into());
    let mut blocks = vec![cipher::Block::<Sm4>::default(); 64];
    let ecb = rate(dur, 1024, || r.encrypt_blocks(black_box(&mut blocks)));
    let gcm = AesGcm::<sm4::Sm4, U12>::new(&key.into());
    let mut buf = vec![0u8; 1024];
    let g = rate(dur, 1024, || {
        black_box(
            gcm.encrypt_in_place_detached(&nonce, b"", black_box(&mut buf))
                .unwrap(),
        );
    });
    let mut short = [0u8; 64];
    let sh = rate(dur, 64, || {
        black_box(
            gcm.encrypt_in_place_detached(&nonce, b"", black_box(&mut short))
                .unwrap(),
        );
    });
    println!(
        "{:<14} {ecb:>12.1} {:>12} {g:>14.1} {:>14} {sh:>14.1}",
        "rustcrypto-sm4", "", "(AesGcm)"
    );
}
