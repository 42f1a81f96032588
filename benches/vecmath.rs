//! Throughput of the vector math: `tanh` and `sigmoid` (`f32`) on every available path
//! against std's `f32::tanh` and a scalar `1/(1 + exp(-x))`, over 1 Ki, 64 Ki and 1 Mi
//! elements. Criterion reports elements per second; divide by 1e9 for elements/ns.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rnn_kernels::Isa;
use rnn_kernels::vecmath::{sigmoid_f32_with, tanh_f32_with};

const SIZES: [usize; 3] = [1 << 10, 1 << 16, 1 << 20];

/// Inputs spread over the interesting range (both tanh branches and saturation).
fn inputs(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as u64 * 2_654_435_761) % 20_000) as f32 / 1000.0 - 10.0)
        .collect()
}

fn bench(c: &mut Criterion) {
    type Kernel = fn(Isa, &mut [f32]) -> rnn_kernels::Result<()>;
    type Scalar = fn(f32) -> f32;
    let funcs: [(&str, Kernel, Scalar); 2] = [
        ("tanh", tanh_f32_with, f32::tanh),
        ("sigmoid", sigmoid_f32_with, |x| 1.0 / (1.0 + (-x).exp())),
    ];
    for (name, kernel, scalar) in funcs {
        let mut group = c.benchmark_group(name);
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(1))
            .sample_size(20);
        for n in SIZES {
            let src = inputs(n);
            let mut buf = src.clone();
            group.throughput(Throughput::Elements(n as u64));
            for isa in Isa::available() {
                group.bench_with_input(BenchmarkId::new(isa.name(), n), &n, |b, _| {
                    b.iter(|| {
                        buf.copy_from_slice(&src);
                        kernel(isa, black_box(&mut buf)).ok();
                    })
                });
            }
            group.bench_with_input(BenchmarkId::new("std_scalar", n), &n, |b, _| {
                b.iter(|| {
                    buf.copy_from_slice(&src);
                    for v in black_box(&mut buf).iter_mut() {
                        *v = scalar(*v);
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
