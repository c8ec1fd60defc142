//! Webhook signing and verification speed (HMAC-SHA256, Standard Webhooks) for small, typical and
//! large bodies, and the two-secret header sent during a rotation.

#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tenant_webhooks::signing::{
    DEFAULT_TOLERANCE, SigningSecret, WebhookHeaders, sign, signature_header, verify,
};

const MSG_ID: &str = "msg_2ZqQ7n4kYb1c9xT0";
const TIMESTAMP: i64 = 1_795_000_000;

fn body(len: usize) -> Vec<u8> {
    let mut b = br#"{"type":"message.received","data":{"text":""#.to_vec();
    b.resize(len.saturating_sub(3), b'x');
    b.extend_from_slice(br#""}}"#);
    b
}

fn signing(c: &mut Criterion) {
    let secret = SigningSecret::generate();
    let old = SigningSecret::generate();
    let mut group = c.benchmark_group("webhook_signing");
    for len in [256usize, 4 * 1024, 64 * 1024] {
        let body = body(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("sign", len), &body, |b, body| {
            b.iter(|| sign(black_box(&secret), MSG_ID, TIMESTAMP, black_box(body)))
        });
        group.bench_with_input(
            BenchmarkId::new("header_two_secrets", len),
            &body,
            |b, body| {
                b.iter(|| signature_header(&[&secret, &old], MSG_ID, TIMESTAMP, black_box(body)))
            },
        );
        let signature = sign(&secret, MSG_ID, TIMESTAMP, &body);
        let ts = TIMESTAMP.to_string();
        let headers = WebhookHeaders {
            id: MSG_ID,
            timestamp: &ts,
            signature: &signature,
        };
        group.bench_with_input(BenchmarkId::new("verify", len), &body, |b, body| {
            b.iter(|| {
                verify(
                    &secret,
                    black_box(&headers),
                    black_box(body),
                    TIMESTAMP,
                    DEFAULT_TOLERANCE,
                )
                .expect("verifies")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
