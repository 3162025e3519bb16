//! The main job on its embedded default workload: a market-data-like Zipf(0.99) "get, put on
//! miss" mix through the cache, single-threaded then on every core, with progress and a summary.
//!
//! ```text
//! cargo run --release --example workload -- [--ops N] [--capacity N] [--keys N] [--ttl-ms N]
//! ```

use alphaforge_cache::Cache;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    ops: usize,
    capacity: usize,
    keys: usize,
    ttl: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        ops: 4_000_000,
        capacity: 100_000,
        keys: 1_000_000,
        ttl: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let raw = it.next().ok_or(format!("{name} needs a value"))?;
            raw.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(format!("{name} wants a positive whole number, got {raw:?}"))
        };
        match flag.as_str() {
            "--ops" => args.ops = number("--ops")?,
            "--capacity" => args.capacity = number("--capacity")?,
            "--keys" => args.keys = number("--keys")?,
            "--ttl-ms" => args.ttl = Some(Duration::from_millis(number("--ttl-ms")? as u64)),
            "-h" | "--help" => {
                println!("usage: workload [--ops N] [--capacity N] [--keys N] [--ttl-ms N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

/// Zipf(s) ranks over `n` keys by inverse-CDF lookup, with a small xorshift generator: the same
/// sequence on every run.
struct Zipf {
    cdf: Vec<f64>,
    state: u64,
}

impl Zipf {
    fn new(n: usize, s: f64, seed: u64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for rank in 1..=n {
            total += 1.0 / (rank as f64).powf(s);
            cdf.push(total);
        }
        cdf.iter_mut().for_each(|c| *c /= total);
        Zipf {
            cdf,
            state: seed | 1,
        }
    }

    fn next(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let u = (self.state >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// A 16-byte key naming an instrument's bar, e.g. `bar:000000123456`.
fn key(rank: usize) -> [u8; 16] {
    let mut k = *b"bar:000000000000";
    let digits = format!("{rank:012}");
    k[4..].copy_from_slice(&digits.as_bytes()[digits.len() - 12..]);
    k
}

/// A 64-byte value: the bar's OHLCV fields as fixed-width text.
fn value(rank: usize) -> [u8; 64] {
    let mut v = [b' '; 64];
    let text = format!(
        "o={rank} h={} l={} c={} v={}",
        rank + 3,
        rank,
        rank + 1,
        rank * 7
    );
    let n = text.len().min(64);
    v[..n].copy_from_slice(&text.as_bytes()[..n]);
    v
}

fn run(cache: &Cache, ranks: &[u32], progress: Option<&str>) {
    let mut buf = Vec::with_capacity(64);
    let step = (ranks.len() / 10).max(1);
    let interactive = std::io::stderr().is_terminal();
    for (i, &rank) in ranks.iter().enumerate() {
        let rank = rank as usize;
        let k = key(rank);
        if !cache.get_into(k, &mut buf) {
            cache.put(k, value(rank)).expect("entries fit the cache");
        } else {
            debug_assert_eq!(buf, value(rank));
        }
        if let Some(label) = progress {
            // Redraw in place on a terminal; in a log, only the end.
            if (i + 1) % step == 0 && (interactive || i + 1 == ranks.len()) {
                eprint!("\r{label}: {:>3}%", (i + 1) * 100 / ranks.len());
            }
        }
    }
    if progress.is_some() {
        eprintln!();
    }
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("workload: {e}");
        std::process::exit(2);
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "workload: Zipf(0.99) get-or-put, {} ops over {} keys, capacity {}, 16-byte keys, 64-byte values{}",
        args.ops,
        args.keys,
        args.capacity,
        args.ttl.map_or(String::new(), |t| format!(", TTL {t:?}"))
    );
    let mut zipf = Zipf::new(args.keys, 0.99, 0x5eed);
    let ranks: Vec<u32> = (0..args.ops).map(|_| zipf.next() as u32).collect();

    let build = || {
        let mut builder = Cache::builder(args.capacity);
        if let Some(ttl) = args.ttl {
            builder = builder.default_ttl(ttl);
        }
        builder.build().unwrap_or_else(|e| {
            eprintln!("workload: {e}");
            std::process::exit(2);
        })
    };

    let cache = build();
    let start = Instant::now();
    run(&cache, &ranks, Some("1 thread"));
    let single = start.elapsed();
    let stats = cache.stats();

    let shared = Arc::new(build());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let shared = Arc::clone(&shared);
            let chunk = &ranks[t * ranks.len() / threads..(t + 1) * ranks.len() / threads];
            scope.spawn(move || run(&shared, chunk, (t == 0).then_some("all threads (thread 0)")));
        }
    });
    let multi = start.elapsed();

    let ns = |d: Duration| d.as_nanos() as f64 / args.ops as f64;
    println!("| run | ops | ns/op | Mops/s | hit ratio |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| 1 thread | {} | {:.1} | {:.2} | {:.4} |",
        args.ops,
        ns(single),
        1e3 / ns(single),
        stats.hit_ratio()
    );
    println!(
        "| {threads} threads | {} | {:.1} | {:.2} | {:.4} |",
        args.ops,
        ns(multi),
        1e3 / ns(multi),
        shared.stats().hit_ratio()
    );
    println!(
        "\nstats (1 thread): hits {} misses {} inserts {} evictions {} entries {} weight {} bytes, {} shards",
        stats.hits, stats.misses, stats.inserts, stats.evictions, stats.entries, stats.weight,
        cache.shard_count()
    );
}
