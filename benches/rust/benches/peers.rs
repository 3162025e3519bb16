//! alphaforge-cache next to moka, quick_cache and lru (behind a mutex), in one process on the same
//! pre-generated keys: 100k-entry capacity, 16-byte keys, 64-byte values. See
//! `docs/benchmarks.md` for the commands and the results.
//!
//! Every key sequence is materialised in access order, so reading the next key is a sequential
//! stream and costs the same for every cache.

use alphaforge_cache_bench::{
    key, keys_of, shuffled, zipf_ids, Engine, Key, Lru, Moka, Quick, Subject, VALUE,
};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, Bencher, BenchmarkGroup, BenchmarkId, Criterion};
use std::hint::black_box;
use std::sync::{mpsc, Barrier};
use std::time::{Duration, Instant};

const CAPACITY: usize = 100_000;
/// Ids of the keys the caches are filled with: `0..CAPACITY`.
const FILL: std::ops::Range<u64> = 0..CAPACITY as u64;
/// Ids never inserted before the miss workload: `1M..1.1M`.
const ABSENT: std::ops::Range<u64> = 1_000_000..1_100_000;
/// Fresh ids for the eviction workload: each is put once per 1M puts, long after it was evicted.
const FRESH: std::ops::Range<u64> = 2_000_000..3_000_000;
/// The Zipf key universe (ids `0..1M`, ten times the capacity) and exponent.
const ZIPF_UNIVERSE: u64 = 1_000_000;
const ZIPF_EXPONENT: f64 = 0.99;
/// Length of the pre-generated Zipf sequence (cycled).
const ZIPF_LEN: usize = 4_000_000;
/// Operations run before a Zipf benchmark starts timing (also used to measure the hit ratio).
const WARM_OPS: usize = 1_000_000;

/// Calls the generic workload `$f(group, name, cache, args...)` once per cache, each built fresh
/// with the same capacity and its defaults, so the timed loops are monomorphised per cache.
macro_rules! for_each_cache {
    ($f:ident, $group:expr $(, $arg:expr)*) => {
        $f($group, "alphaforge", Engine::new(CAPACITY) $(, $arg)*);
        $f($group, "quick_cache", Quick::new(CAPACITY) $(, $arg)*);
        $f($group, "moka", Moka::new(CAPACITY) $(, $arg)*);
        $f($group, "lru", Lru::new(CAPACITY) $(, $arg)*);
    };
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

fn fill_keys<S: Subject>(cache: &S, keys: &[Key]) {
    for k in keys {
        cache.put(k, &VALUE);
    }
    cache.settle();
}

/// Cycles through `keys` with one operation per iteration.
fn cycle<S: Subject>(
    b: &mut Bencher<'_>,
    cache: &S,
    keys: &[Key],
    op: impl Fn(&S, &Key, &mut Vec<u8>) -> bool,
) {
    let mut buf = Vec::with_capacity(VALUE.len());
    let mut i = 0;
    b.iter(|| {
        let out = op(cache, &keys[i], &mut buf);
        i += 1;
        if i == keys.len() {
            i = 0;
        }
        out
    });
}

fn get_op<S: Subject>(cache: &S, key: &Key, buf: &mut Vec<u8>) -> bool {
    cache.get(key, buf)
}

fn put_op<S: Subject>(cache: &S, key: &Key, _buf: &mut Vec<u8>) -> bool {
    cache.put(key, &VALUE);
    true
}

/// One operation of the Zipf mix: a get, and on a miss a put. Returns whether the get hit.
#[inline]
fn zipf_op<S: Subject>(cache: &S, key: &Key, buf: &mut Vec<u8>) -> bool {
    let hit = cache.get(key, buf);
    if !hit {
        cache.put(key, &VALUE);
    }
    hit
}

fn hit_ratio<S: Subject>(cache: &S, ops: &[Key]) -> f64 {
    let mut buf = Vec::with_capacity(VALUE.len());
    let hits = ops.iter().filter(|k| zipf_op(cache, k, &mut buf)).count();
    hits as f64 / ops.len() as f64
}

/// Get hit: filled with the 100k keys, then looks up the keys still resident (a sharded or
/// admission-controlled cache may have dropped a few while filling), in a shuffled order.
fn get_hit<S: Subject>(group: &mut Group<'_>, name: &str, cache: S, keys: &[Key]) {
    fill_keys(&cache, keys);
    let resident: Vec<Key> = keys
        .iter()
        .filter(|k| cache.contains(&k[..]))
        .copied()
        .collect();
    eprintln!(
        "get_hit/{name}: {} of {} keys resident",
        resident.len(),
        keys.len()
    );
    group.bench_function(name, |b| cycle(b, &cache, &resident, get_op));
}

/// Get miss: filled with the 100k keys, then looks up 100k keys never inserted.
fn get_miss<S: Subject>(group: &mut Group<'_>, name: &str, cache: S, keys: &[Key], absent: &[Key]) {
    fill_keys(&cache, keys);
    group.bench_function(name, |b| cycle(b, &cache, absent, get_op));
}

/// Put with eviction: filled with the 100k keys, then puts fresh keys (1M of them, cycled).
fn put_evict<S: Subject>(group: &mut Group<'_>, name: &str, cache: S, keys: &[Key], fresh: &[Key]) {
    fill_keys(&cache, keys);
    group.bench_function(name, |b| cycle(b, &cache, fresh, put_op));
}

/// Zipf mix on one thread, warmed with the first 1M operations of the sequence.
fn zipf_mix<S: Subject>(group: &mut Group<'_>, name: &str, cache: S, ops: &[Key]) {
    hit_ratio(&cache, &ops[..WARM_OPS]);
    let ratio = hit_ratio(&cache, &ops[WARM_OPS..2 * WARM_OPS]);
    eprintln!("zipf_mix/{name}: steady hit ratio {ratio:.3}");
    group.bench_function(name, |b| cycle(b, &cache, ops, zipf_op));
}

/// Zipf mix on 1 and 2 threads, time per operation of the total throughput.
///
/// Each measurement keeps `threads` worker threads alive for its whole run (so thread start-up,
/// a fresh thread's empty malloc cache and the like stay out of the samples). For one sample of
/// `iters` operations, each worker gets its share, waits at a barrier with the others, then runs
/// its share over its own part of the key sequence, resuming where it stopped in the previous
/// sample. A sample's time runs from the first worker's start to the last worker's end, so
/// criterion's time per iteration is the time per operation of the total throughput.
fn zipf_threads<S: Subject>(group: &mut Group<'_>, name: &str, cache: S, ops: &[Key]) {
    hit_ratio(&cache, &ops[..WARM_OPS]);
    for threads in [1usize, 2] {
        let part = ops.len() / threads;
        let barrier = Barrier::new(threads);
        let cache = &cache;
        std::thread::scope(|scope| {
            let (done_tx, done_rx) = mpsc::channel::<(Instant, Instant)>();
            let workers: Vec<mpsc::Sender<u64>> = (0..threads)
                .map(|t| {
                    let (work_tx, work_rx) = mpsc::channel::<u64>();
                    let done_tx = done_tx.clone();
                    let slice = &ops[t * part..(t + 1) * part];
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let mut buf = Vec::with_capacity(VALUE.len());
                        let mut i = 0;
                        while let Ok(n) = work_rx.recv() {
                            barrier.wait();
                            let start = Instant::now();
                            for _ in 0..n {
                                black_box(zipf_op(cache, &slice[i], &mut buf));
                                i += 1;
                                if i == slice.len() {
                                    i = 0;
                                }
                            }
                            done_tx.send((start, Instant::now())).unwrap();
                        }
                    });
                    work_tx
                })
                .collect();
            group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| {
                    for (t, worker) in workers.iter().enumerate() {
                        let share =
                            iters / threads as u64 + u64::from((t as u64) < iters % threads as u64);
                        worker.send(share).unwrap();
                    }
                    let spans: Vec<(Instant, Instant)> =
                        (0..threads).map(|_| done_rx.recv().unwrap()).collect();
                    let start = spans.iter().map(|s| s.0).min().unwrap();
                    let end = spans.iter().map(|s| s.1).max().unwrap();
                    end - start
                });
            });
            drop(workers); // the workers see their channel close and return
        });
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args()
}

fn peers(c: &mut Criterion) {
    let fill = keys_of(&shuffled(FILL, 1));
    let absent = keys_of(&shuffled(ABSENT, 2));
    let fresh = keys_of(&shuffled(FRESH, 3));
    let zipf = keys_of(&zipf_ids(ZIPF_UNIVERSE, ZIPF_EXPONENT, ZIPF_LEN, 4));
    eprintln!(
        "capacity {CAPACITY}, key {} B, value {} B; alphaforge shards: {}, quick_cache shards: {}",
        key(0).len(),
        VALUE.len(),
        Engine::new(CAPACITY).0.shard_count(),
        Quick::new(CAPACITY).0.num_shards(),
    );

    let mut group = c.benchmark_group("get_hit");
    for_each_cache!(get_hit, &mut group, &fill);
    // The engine's allocating `get` (returns a fresh `Vec<u8>`), for reference.
    let engine = Engine::new(CAPACITY);
    fill_keys(&engine, &fill);
    let resident: Vec<Key> = fill
        .iter()
        .filter(|k| engine.0.contains(k))
        .copied()
        .collect();
    group.bench_function("alphaforge_get_alloc", |b| {
        let mut i = 0;
        b.iter(|| {
            let value = engine.0.get(resident[i]);
            i += 1;
            if i == resident.len() {
                i = 0;
            }
            value
        });
    });
    drop(engine);
    group.finish();

    let mut group = c.benchmark_group("get_miss");
    for_each_cache!(get_miss, &mut group, &fill, &absent);
    group.finish();

    let mut group = c.benchmark_group("put_evict");
    for_each_cache!(put_evict, &mut group, &fill, &fresh);
    group.finish();

    let mut group = c.benchmark_group("zipf_mix");
    for_each_cache!(zipf_mix, &mut group, &zipf);
    group.finish();

    let mut group = c.benchmark_group("zipf_mix_threads");
    for_each_cache!(zipf_threads, &mut group, &zipf);
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = peers
}
criterion_main!(benches);
