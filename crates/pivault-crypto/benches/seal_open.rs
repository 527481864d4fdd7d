//! Seal + open of 1 KiB fields: raw ring AES-256-GCM vs `Dek` (AES and SM4).
//!
//! Run with `cargo bench -p pivault-crypto --bench seal_open`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pivault_crypto::{Aad, Dek, Suite};
use ring::aead::{Aad as RingAad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

const LEN: usize = 1024;

fn bench(c: &mut Criterion) {
    let plaintext = vec![0x5au8; LEN];
    let mut g = c.benchmark_group("seal_open_1KiB");
    g.throughput(Throughput::Bytes(LEN as u64));

    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let mut counter: u64 = 0;
    let mut buf = Vec::with_capacity(LEN + 16);
    g.bench_function("raw_ring_aes256gcm", |b| {
        b.iter(|| {
            counter += 1;
            let mut n = [0u8; 12];
            n[4..].copy_from_slice(&counter.to_be_bytes());
            buf.clear();
            buf.extend_from_slice(black_box(&plaintext));
            key.seal_in_place_append_tag(
                Nonce::assume_unique_for_key(n),
                RingAad::empty(),
                &mut buf,
            )
            .unwrap();
            let pt = key
                .open_in_place(Nonce::assume_unique_for_key(n), RingAad::empty(), &mut buf)
                .unwrap();
            black_box(pt.len());
        })
    });

    for (name, suite) in [
        ("dek_aes256gcm", Suite::Aes256Gcm),
        ("dek_sm4gcm", Suite::Sm4Gcm),
    ] {
        let dek = Dek::from_bytes("dek-0123456789abcdef01234567", suite, [7u8; 32]);
        let aad = Aad {
            subject_id: "6f1c2b9e-3a4d-4e5f-8a7b-1c2d3e4f5a6b",
            category: "user.contact.address",
            field: "postal_address",
            key_id: dek.key_id(),
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let sealed = dek.seal(&aad, black_box(&plaintext));
                let opened = dek.open(&aad, &sealed).unwrap();
                black_box(opened.len());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
