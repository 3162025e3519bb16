//! `Cache::record_reads`: the replay of reads a binding served from its own mirror (the Python
//! read buffer), in batches of 256 keys, on a one-shard cache of 100k entries (16-byte keys,
//! 8-byte values: the Python binding's handle cache). Reported per key. The keys are a shuffled
//! cycle over the stored ones (every replayed read is a hit), and a Zipf(0.99) sequence over the
//! stored keys (hot keys repeat within a batch).
//!
//! `Cache::record_reads_later`: the calling thread's side of a hand-over of 100 reads (Python's
//! `get_many` of 100 keys) on a cache of 100k entries in 16 shards (the default on 2 CPUs), with
//! the background thread replaying beside it: the copy, and the replays the caller makes itself
//! when the thread falls behind.

use alphaforge_cache::Cache;
use alphaforge_cache_bench::{keys_of, shuffled, zipf_ids, Key};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

const ENTRIES: usize = 100_000;
const BATCH: usize = 256;

fn filled() -> Cache {
    let cache = Cache::builder(ENTRIES).shards(1).build().unwrap();
    for key in keys_of(&shuffled(0..ENTRIES as u64, 1)) {
        cache.put(key, 7u64.to_le_bytes()).unwrap();
    }
    cache
}

fn replay(c: &mut Criterion, name: &str, cache: &Cache, reads: &[Key]) {
    let mut group = c.benchmark_group("record_reads");
    group.throughput(Throughput::Elements(BATCH as u64));
    let batches: Vec<&[Key]> = reads.chunks_exact(BATCH).collect();
    group.bench_function(name, |b| {
        let mut i = 0;
        b.iter(|| {
            cache.record_reads(batches[i], 0);
            i = (i + 1) % batches.len();
        });
    });
    group.finish();
}

fn hand_over(c: &mut Criterion, reads: &[Key]) {
    const HANDED: usize = 100;
    let cache = Cache::builder(ENTRIES).shards(16).build().unwrap();
    for key in keys_of(&shuffled(0..ENTRIES as u64, 1)) {
        cache.put(key, 7u64.to_le_bytes()).unwrap();
    }
    let mut group = c.benchmark_group("record_reads_later");
    group.throughput(Throughput::Elements(HANDED as u64));
    let batches: Vec<&[Key]> = reads.chunks_exact(HANDED).collect();
    group.bench_function("uniform_100_16_shards", |b| {
        let mut i = 0;
        b.iter(|| {
            cache.record_reads_later(batches[i], 0);
            i = (i + 1) % batches.len();
        });
    });
    group.bench_function("at_once_uniform_100_16_shards", |b| {
        let mut i = 0;
        b.iter(|| {
            cache.record_reads(batches[i], 0);
            i = (i + 1) % batches.len();
        });
    });
    group.finish();
    assert_eq!(cache.len(), ENTRIES);
}

fn benches(c: &mut Criterion) {
    let cache = filled();
    let uniform = keys_of(&shuffled(0..ENTRIES as u64, 2));
    replay(c, "uniform_256", &cache, &uniform);
    let zipf = keys_of(&zipf_ids(ENTRIES as u64, 0.99, 1 << 20, 3));
    replay(c, "zipf_256", &cache, &zipf);
    assert_eq!(cache.len(), ENTRIES);
    hand_over(c, &uniform);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! { name = replay_group; config = config(); targets = benches }
criterion_main!(replay_group);
