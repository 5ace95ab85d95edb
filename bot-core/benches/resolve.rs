//! Tokenize + parse + candidates for typical commands, on the shipped-like config and
//! on a generated 5,000-instance platform; `tokenize` alone as the baseline.

use std::hint::black_box;

use bot_core::config::Config;
use bot_core::lexer::tokenize;
use bot_core::resolve::{Candidates, Index, Parsed};
use bot_core::testing::{generated_config, shipped_like_config};
use criterion::{criterion_group, criterion_main, Criterion};

const SHIPPED: &[&str] = &[
    "health rh blue",
    "<@U0BOT> please show tasks rh purple",
    "force restart master active",
    "deploy staging feature/login",
    "health blue master roih hunter",
    "health mastr blue",
];

const LARGE: &[&str] = &[
    "health e17 blue",
    "<@U0BOT> please show tasks env424 purple",
    "health env4242 purple",
    "force restart cluster 42 search active",
    "health blue env250 please",
    "health evn123 purple",
];

/// The whole path from message text to target instances.
fn resolve(index: &Index, config: &Config, text: &str) -> usize {
    match index.parse(config, &tokenize(text)) {
        Parsed::Command(m) => match index.candidates(config, &m.selectors) {
            Candidates::Instances(list) => list.len(),
            Candidates::Conflict(msg) => msg.len(),
        },
        _ => 0,
    }
}

fn bench(c: &mut Criterion, name: &str, config: &Config, commands: &[&str]) {
    let index = Index::build(config);
    let mut group = c.benchmark_group(name);
    for text in commands {
        group.bench_function(format!("tokenize/{text}"), |b| {
            b.iter(|| tokenize(black_box(text)))
        });
        let tokens = tokenize(text);
        group.bench_function(format!("parse/{text}"), |b| {
            b.iter(|| index.parse(config, black_box(&tokens)))
        });
        group.bench_function(format!("resolve/{text}"), |b| {
            b.iter(|| resolve(&index, config, black_box(text)))
        });
    }
    group.finish();
}

fn shipped(c: &mut Criterion) {
    bench(c, "shipped", &shipped_like_config(), SHIPPED);
}

fn large(c: &mut Criterion) {
    let config = generated_config(5_000);
    bench(c, "5000", &config, LARGE);
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.bench_function("index/5000", |b| {
        b.iter(|| Index::build(black_box(&config)))
    });
    group.finish();
}

criterion_group!(benches, shipped, large);
criterion_main!(benches);
