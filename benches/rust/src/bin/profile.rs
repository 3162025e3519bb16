//! Runs one workload of `benches/peers.rs` on one cache, with no harness around it, for profilers
//! (`perf record`, `valgrind --tool=callgrind`).
//!
//! Usage: `profile WORKLOAD CACHE [OPS]` with WORKLOAD one of `get_hit`, `get_miss`, `put_evict`,
//! `zipf_mix`, and CACHE one of `alphaforge`, `quick_cache`, `moka`, `lru`. Prints ns/op.

use alphaforge_cache_bench::{
    keys_of, shuffled, zipf_ids, Engine, Key, Lru, Moka, Quick, Subject, VALUE,
};
use std::hint::black_box;
use std::time::Instant;

const CAPACITY: usize = 100_000;

fn run<S: Subject>(cache: S, workload: &str, ops: usize) {
    let fill = keys_of(&shuffled(0..CAPACITY as u64, 1));
    let mut buf = Vec::with_capacity(VALUE.len());
    let keys: Vec<Key> = match workload {
        "get_hit" | "get_miss" | "put_evict" => {
            for k in &fill {
                cache.put(k, &VALUE);
            }
            cache.settle();
            match workload {
                "get_hit" => fill
                    .iter()
                    .filter(|k| cache.contains(&k[..]))
                    .copied()
                    .collect(),
                "get_miss" => keys_of(&shuffled(1_000_000..1_100_000, 2)),
                _ => keys_of(&shuffled(2_000_000..3_000_000, 3)),
            }
        }
        "zipf_mix" => {
            let keys = keys_of(&zipf_ids(1_000_000, 0.99, 4_000_000, 4));
            for k in &keys[..1_000_000] {
                if !cache.get(k, &mut buf) {
                    cache.put(k, &VALUE);
                }
            }
            keys
        }
        other => panic!("unknown workload {other}"),
    };
    let start = Instant::now();
    let mut i = 0;
    for _ in 0..ops {
        let k = &keys[i];
        match workload {
            "put_evict" => cache.put(k, &VALUE),
            "zipf_mix" => {
                if !cache.get(k, &mut buf) {
                    cache.put(k, &VALUE);
                }
            }
            _ => {
                black_box(cache.get(k, &mut buf));
            }
        }
        i += 1;
        if i == keys.len() {
            i = 0;
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{workload}: {:.1} ns/op over {ops} ops",
        elapsed.as_nanos() as f64 / ops as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workload = args.first().map_or("get_hit", String::as_str);
    let cache = args.get(1).map_or("alphaforge", String::as_str);
    let ops: usize = args.get(2).map_or(50_000_000, |n| n.parse().expect("OPS"));
    match cache {
        "alphaforge" => run(Engine::new(CAPACITY), workload, ops),
        "quick_cache" => run(Quick::new(CAPACITY), workload, ops),
        "moka" => run(Moka::new(CAPACITY), workload, ops),
        "lru" => run(Lru::new(CAPACITY), workload, ops),
        other => panic!("unknown cache {other}"),
    }
}
