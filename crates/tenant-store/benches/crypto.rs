//! Sealing and opening a typical channel credential (a Slack bot and app token pair) under the
//! key ring, as every channel write and every gateway config load does.

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tenant_store::crypto::KeyRing;
use zeroize::Zeroizing;

fn bench(c: &mut Criterion) {
    let ring = KeyRing::new([("k1".to_owned(), Zeroizing::new(vec![7u8; 32]))]).unwrap();
    let aad = b"01933b5e-7f1c-7c2a-9d3e-5a1b2c3d4e5f\0slack";
    let plaintext = br#"{"appToken":"xapp-1-A0123456789-1234567890123-abcdefabcdefabcdefabcdefabcdefabcdef","botToken":"xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"}"#;
    let envelope = ring.seal(aad, plaintext).unwrap();
    c.bench_function("credentials_seal", |b| {
        b.iter(|| ring.seal(black_box(aad), black_box(plaintext)).unwrap())
    });
    c.bench_function("credentials_open", |b| {
        b.iter(|| ring.open(black_box(aad), black_box(&envelope)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
