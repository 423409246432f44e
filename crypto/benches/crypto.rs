//! Hash, sign, verify and batch-verify throughput. Run with `cargo bench -p dpx-crypto`.
//! Criterion prints the time per iteration; batch benches report per-signature throughput.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dpx_crypto::{BatchItem, Domain, Hash, Keypair, PublicKey, Signature, verify_batch};
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

    let mut g = c.benchmark_group("verify_batch");
    for n in [1usize, 16, 64, 256] {
        let signed: Vec<(PublicKey, Hash, Signature)> = (0..n)
            .map(|i| {
                let k = Keypair::from_seed([(i % 251) as u8 + 1; 32]);
                let d = Hash::of(Domain::TRANSACTION, "bench", &i.to_le_bytes());
                (k.public(), d, k.sign_digest(&d))
            })
            .collect();
        let items: Vec<BatchItem<'_>> =
            signed.iter().map(|(key, digest, sig)| BatchItem { key, digest, sig }).collect();
        // Elements throughput makes criterion print signatures per second.
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &items, |b, items| {
            b.iter(|| verify_batch(black_box(items)));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
