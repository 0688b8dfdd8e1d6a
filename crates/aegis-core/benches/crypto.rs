//! Criterion benchmarks for vault key derivation (Argon2id + HKDF) and for sealing and opening
//! one credential secret. Run with `cargo bench -p aegis-core --bench crypto`.
#![allow(missing_docs)]

use std::hint::black_box;

use aegis_core::crypto::{KdfParams, MasterKey, SecretField, VaultKeys};
use criterion::{Criterion, criterion_group, criterion_main};

fn derivation(c: &mut Criterion) {
    let master = MasterKey::from_bytes([7; 32]);
    let salt = [3u8; 16];
    let mut group = c.benchmark_group("derive_vault_keys");
    group.sample_size(10);
    group.bench_function("argon2id_default_64mib_t3_p1", |b| {
        b.iter(|| VaultKeys::derive(&master, &salt, KdfParams::default(), [1; 16]).expect("derive"))
    });
    let minimum = KdfParams {
        memory_kib: KdfParams::MIN_MEMORY_KIB,
        iterations: 2,
        parallelism: 1,
    };
    group.bench_function("argon2id_minimum_19mib_t2_p1", |b| {
        b.iter(|| VaultKeys::derive(&master, &salt, minimum, [1; 16]).expect("derive"))
    });
    group.finish();
}

fn envelope(c: &mut Criterion) {
    let keys = VaultKeys::derive(
        &MasterKey::from_bytes([7; 32]),
        &[3u8; 16],
        KdfParams {
            memory_kib: KdfParams::MIN_MEMORY_KIB,
            iterations: 2,
            parallelism: 1,
        },
        [1; 16],
    )
    .expect("derive");
    let secret = b"sk-live-0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
    let sealed = keys
        .seal_secret([2; 16], SecretField::Secret, secret)
        .expect("seal");
    let mut group = c.benchmark_group("credential_envelope");
    group.bench_function("seal_50_byte_secret", |b| {
        b.iter(|| {
            keys.seal_secret([2; 16], SecretField::Secret, black_box(secret))
                .expect("seal")
        })
    });
    group.bench_function("open_50_byte_secret", |b| {
        b.iter(|| {
            keys.open_secret([2; 16], SecretField::Secret, black_box(&sealed))
                .expect("open")
        })
    });
    group.bench_function("row_mac_256_bytes", |b| {
        let row = [9u8; 256];
        b.iter(|| keys.row_mac(black_box(&row)))
    });
    group.finish();
}

criterion_group!(benches, derivation, envelope);
criterion_main!(benches);
