//! Hash, sign, verify and key-parse throughput. Run with `cargo bench -p dpx-crypto`.
//! Criterion prints the time per iteration; the many-signature benches report signatures per
//! second. `dalek_batch_reference` is the cofactorless batch dpx does NOT use (see
//! `crypto/src/verify.rs`), measured so the cost of that choice is a figure, not a guess.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dpx_crypto::{Domain, Hash, Keypair, PublicKey, Signature, SignedDigest, verify_all};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let key = Keypair::from_seed([1; 32]);
    let msg = vec![7u8; 256];

    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_function("domain_hash_256B", |b| {
        b.iter(|| Hash::of(Domain::TRANSACTION, "bench", black_box(&msg)));
    });
    g.finish();

    let digest = Hash::of(Domain::TRANSACTION, "bench", &msg);
    let sig = key.sign_digest(&digest);
    let pk = key.public();
    let mut g = c.benchmark_group("ed25519");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| b.iter(|| key.sign_digest(black_box(&digest))));
    g.bench_function("verify_strict", |b| {
        b.iter(|| pk.verify_digest(black_box(&digest), black_box(&sig)));
    });
    g.finish();

    let mut g = c.benchmark_group("verify_all");
    for n in [1usize, 64, 256] {
        let signed = signed(n);
        let items: Vec<SignedDigest<'_>> =
            signed.iter().map(|(key, digest, sig)| SignedDigest { key, digest, sig }).collect();
        // Elements throughput makes criterion print signatures per second.
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &items, |b, items| {
            b.iter(|| verify_all(black_box(items)));
        });
    }
    g.finish();

    let mut g = c.benchmark_group("dalek_batch_reference");
    for n in [64usize, 256] {
        let signed = signed(n);
        let msgs: Vec<&[u8]> = signed.iter().map(|(_, d, _)| d.as_bytes().as_slice()).collect();
        let sigs: Vec<ed25519_dalek::Signature> =
            signed.iter().map(|(_, _, s)| ed25519_dalek::Signature::from_bytes(&s.0)).collect();
        let keys: Vec<ed25519_dalek::VerifyingKey> = signed
            .iter()
            .map(|(k, _, _)| {
                ed25519_dalek::VerifyingKey::from_bytes(k.as_bytes()).expect("a Keypair key")
            })
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| ed25519_dalek::verify_batch(black_box(&msgs), &sigs, &keys));
        });
    }
    g.finish();

    // Parsing a key the thread has not seen (decompression + subgroup check): more distinct
    // keys than the per-thread cache holds, so every parse misses.
    let keys: Vec<[u8; 32]> = signed(20_000).iter().map(|(k, _, _)| k.to_bytes()).collect();
    let mut g = c.benchmark_group("public_key");
    g.throughput(Throughput::Elements(1));
    let mut at = 0;
    g.bench_function("parse_uncached", |b| {
        b.iter(|| {
            at = (at + 1) % keys.len();
            PublicKey::from_bytes(black_box(&keys[at]))
        });
    });
    g.finish();
}

fn signed(n: usize) -> Vec<(PublicKey, Hash, Signature)> {
    (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            let k = Keypair::from_seed(seed);
            let d = Hash::of(Domain::TRANSACTION, "bench", &i.to_le_bytes());
            (k.public(), d, k.sign_digest(&d))
        })
        .collect()
}

criterion_group!(benches, bench);
criterion_main!(benches);
