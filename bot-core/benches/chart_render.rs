//! Chart rendering time: a 30-day deploy chart (stacked bars and a line on a second
//! axis) and a 48-point latency chart, each rendered to an 800×400 PNG, beside the
//! baseline of encoding a blank 800×400 PNG (the part of the work every chart pays).

use bot_core::chart::{encode_png, render, ChartSpec, Dataset, Kind};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn deploys() -> ChartSpec {
    let labels: Vec<String> = (1..=30).map(|d| format!("11-{d:02}")).collect();
    let ok = (0..30).map(|i| Some(f64::from(i % 7))).collect();
    let failed = (0..30).map(|i| Some(f64::from(i % 4 == 0))).collect();
    let median = (0..30).map(|i| Some(3.0 + f64::from(i % 5))).collect();
    ChartSpec::new(Kind::Bar, "Deploys on staging, last 30 days", labels)
        .dataset(Dataset::new("succeeded", ok).stack("d").color("#2eb67d"))
        .dataset(Dataset::new("failed", failed).stack("d").color("#e01e5a"))
        .dataset(
            Dataset::new("median minutes", median)
                .kind(Kind::Line)
                .on_right_axis(),
        )
}

fn latency() -> ChartSpec {
    let labels: Vec<String> = (0..48)
        .map(|i| format!("{:02}:{:02}", i / 2, i % 2 * 30))
        .collect();
    let p50 = (0..48).map(|i| Some(20.0 + f64::from(i % 9))).collect();
    let p95 = (0..48)
        .map(|i| Some(60.0 + f64::from(i % 13) * 3.0))
        .collect();
    ChartSpec::new(Kind::Line, "Latency of staging api blue, last day", labels)
        .dataset(Dataset::new("p50 ms", p50))
        .dataset(Dataset::new("p95 ms", p95))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("chart_render");
    let blank = vec![255u8; 800 * 400 * 3];
    g.bench_function("baseline: blank 800x400 PNG encode", |b| {
        b.iter(|| encode_png(black_box(&blank), 800, 400).expect("encodes"))
    });
    let d = deploys();
    g.bench_function("deploys, 30 days (bars + line, two axes)", |b| {
        b.iter(|| render(black_box(&d)).expect("renders"))
    });
    let l = latency();
    g.bench_function("latency, 48 points (two lines)", |b| {
        b.iter(|| render(black_box(&l)).expect("renders"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
