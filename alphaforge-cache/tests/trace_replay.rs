//! Exact-LRU replay of real cache traces: a one-shard cache, driven "get, insert on miss", must score
//! exactly the hits of a plain reference LRU at every capacity, keep the same entries in the same
//! recency order, and reproduce the LRU hit ratios the ARC paper publishes for its OLTP trace.
//!
//! The traces are vendored, compressed and unmodified, in `testdata/traces/` at the repository root
//! (see the README there for their sources, formats and licences).

use alphaforge_cache::Cache;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::thread;

/// The folder of vendored traces.
fn traces_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces")
}

/// Opens a vendored trace, or fails saying which file is missing and where it comes from.
fn open_trace(relative: &str) -> File {
    let path = traces_dir().join(relative);
    File::open(&path).unwrap_or_else(|err| {
        panic!(
            "trace file {} cannot be opened ({err}). The replay tests read the traces vendored in \
             testdata/traces/ at the repository root (its README.md names their sources); restore \
             them with `git checkout -- testdata/traces`.",
            path.display()
        )
    })
}

/// A trace: its requests as dense key ids (0, 1, 2, ... in order of first appearance), and the
/// original key of each id. The cache sees the original keys; the reference LRU indexes by id.
struct Trace {
    name: String,
    requests: Vec<u32>,
    keys: Vec<i64>,
}

impl Trace {
    fn from_keys(name: &str, keys: impl Iterator<Item = i64>) -> Trace {
        let mut ids = HashMap::new();
        let mut trace = Trace {
            name: name.to_string(),
            requests: Vec::new(),
            keys: Vec::new(),
        };
        for key in keys {
            let next_id = trace.keys.len() as u32;
            let id = *ids.entry(key).or_insert(next_id);
            if id == next_id {
                trace.keys.push(key);
            }
            trace.requests.push(id);
        }
        trace
    }

    /// Checks the request and unique-key counts the traces README gives for this file.
    fn expect_counts(self, requests: usize, unique: usize) -> Trace {
        assert_eq!(
            (self.requests.len(), self.keys.len()),
            (requests, unique),
            "{}: (requests, unique keys) differ from testdata/traces/README.md",
            self.name
        );
        self
    }
}

/// A `lirs` trace: gzip text, one integer key per line; `*` checkpoint markers and blank lines are
/// skipped.
fn read_lirs(name: &str) -> Trace {
    let file = open_trace(&format!("lirs/{name}.trace.gz"));
    let text = BufReader::new(flate2::read::MultiGzDecoder::new(file));
    let keys = text.lines().filter_map(|line| {
        let line = line.unwrap_or_else(|err| panic!("lirs/{name}: cannot decompress: {err}"));
        let line = line.trim();
        if line.is_empty() || line.contains('*') {
            return None;
        }
        Some(
            line.parse::<i64>()
                .unwrap_or_else(|err| panic!("lirs/{name}: bad line {line:?}: {err}")),
        )
    });
    Trace::from_keys(name, keys)
}

/// An `arc` trace: zstd text, one I/O per line, `start_block n_blocks ignored request_no`, standing
/// for `n_blocks` requests to the blocks `start_block ..`.
fn read_arc(name: &str) -> Trace {
    let file = open_trace(&format!("arc/{name}.lis.zst"));
    let mut decoder = ruzstd::decoding::StreamingDecoder::new(BufReader::new(file))
        .unwrap_or_else(|err| panic!("arc/{name}: not a zstd stream: {err}"));
    let mut text = String::new();
    decoder
        .read_to_string(&mut text)
        .unwrap_or_else(|err| panic!("arc/{name}: cannot decompress: {err}"));
    let keys = text.lines().flat_map(|line| {
        let mut fields = line.split_ascii_whitespace().map(|field| {
            field
                .parse::<i64>()
                .unwrap_or_else(|err| panic!("arc/{name}: bad line {line:?}: {err}"))
        });
        let (Some(start), Some(blocks)) = (fields.next(), fields.next()) else {
            panic!("arc/{name}: line {line:?} lacks start_block and n_blocks");
        };
        start..start + blocks
    });
    Trace::from_keys(name, keys)
}

/// "No id": the end of the recency list.
const NONE: u32 = u32::MAX;

/// A plain exact LRU of key ids: a doubly linked recency list kept in arrays indexed by id, most
/// recently used at `head`, least at `tail`.
struct ReferenceLru {
    capacity: usize,
    len: usize,
    head: u32,
    tail: u32,
    /// For each cached id, its neighbour towards the head (`newer`) and towards the tail (`older`).
    newer: Vec<u32>,
    older: Vec<u32>,
    cached: Vec<bool>,
}

impl ReferenceLru {
    fn new(capacity: usize, ids: usize) -> Self {
        ReferenceLru {
            capacity,
            len: 0,
            head: NONE,
            tail: NONE,
            newer: vec![NONE; ids],
            older: vec![NONE; ids],
            cached: vec![false; ids],
        }
    }

    /// Uses `id`: returns whether it was cached (a hit). Either way it becomes the most recently
    /// used; on a miss it is cached, first evicting the least recently used id if full.
    fn access(&mut self, id: u32) -> bool {
        let hit = self.cached[id as usize];
        if hit {
            self.unlink(id);
        } else {
            if self.len == self.capacity {
                let lru = self.tail;
                self.unlink(lru);
                self.cached[lru as usize] = false;
                self.len -= 1;
            }
            self.cached[id as usize] = true;
            self.len += 1;
        }
        self.push_front(id);
        hit
    }

    fn unlink(&mut self, id: u32) {
        let (newer, older) = (self.newer[id as usize], self.older[id as usize]);
        match newer {
            NONE => self.head = older,
            newer => self.older[newer as usize] = older,
        }
        match older {
            NONE => self.tail = newer,
            older => self.newer[older as usize] = newer,
        }
    }

    fn push_front(&mut self, id: u32) {
        self.newer[id as usize] = NONE;
        self.older[id as usize] = self.head;
        match self.head {
            NONE => self.tail = id,
            head => self.newer[head as usize] = id,
        }
        self.head = id;
    }

    /// The cached ids, most recently used first.
    fn order(&self) -> Vec<u32> {
        let mut order = Vec::with_capacity(self.len);
        let mut id = self.head;
        while id != NONE {
            order.push(id);
            id = self.older[id as usize];
        }
        assert_eq!(order.len(), self.len, "the reference list lost an id");
        order
    }
}

/// A cache key: the trace's integer key as 8 big-endian bytes.
fn key_bytes(key: i64) -> [u8; 8] {
    key.to_be_bytes()
}

/// Replays `trace` at `capacity` through a one-shard cache and through the reference LRU; checks
/// they agree on every request's hit or miss, on the statistics and on the final recency order, and
/// returns the hit count.
fn replay(trace: &Trace, capacity: usize) -> u64 {
    let cache = Cache::builder(capacity)
        .shards(1)
        .build()
        .expect("a valid configuration");
    let mut reference = ReferenceLru::new(capacity, trace.keys.len());
    let name = &trace.name;
    let mut hits = 0u64;
    for (i, &id) in trace.requests.iter().enumerate() {
        let key = key_bytes(trace.keys[id as usize]);
        let hit = cache.get(key).is_some();
        if !hit {
            cache
                .put(key, b"")
                .expect("an unbounded-weight cache takes every entry");
        }
        assert_eq!(
            hit,
            reference.access(id),
            "{name} at {capacity} entries, request {i} (key {}): the cache and the reference LRU \
             disagree on hit or miss",
            trace.keys[id as usize]
        );
        hits += u64::from(hit);
    }
    let requests = trace.requests.len() as u64;
    let resident = capacity.min(trace.keys.len()) as u64;
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.inserts, stats.updates),
        (hits, requests - hits, requests - hits, 0),
        "{name} at {capacity} entries: stats {stats:?}"
    );
    assert_eq!(
        (
            stats.evictions,
            stats.expirations,
            stats.removals,
            stats.entries
        ),
        (requests - hits - resident, 0, 0, resident),
        "{name} at {capacity} entries: stats {stats:?}"
    );
    let cached: Vec<Vec<u8>> = cache.iter().map(|entry| entry.key).collect();
    let expected: Vec<Vec<u8>> = reference
        .order()
        .into_iter()
        .map(|id| key_bytes(trace.keys[id as usize]).to_vec())
        .collect();
    assert!(
        cached == expected,
        "{name} at {capacity} entries: the final recency order differs from the reference LRU's"
    );
    hits
}

/// Replays `trace` at every capacity (on parallel threads) and returns the hit counts in order.
fn replay_all(trace: &Trace, capacities: &[usize]) -> Vec<u64> {
    thread::scope(|scope| {
        let runs: Vec<_> = capacities
            .iter()
            .map(|&capacity| scope.spawn(move || replay(trace, capacity)))
            .collect();
        runs.into_iter()
            .map(|run| {
                run.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Capacities for a LIRS trace: a few fixed sizes, half its unique keys, and room for all but one
/// key and for all of them.
fn lirs_capacities(unique: usize) -> Vec<usize> {
    let mut capacities = vec![1, 10, 100, 1_000, unique / 2, unique - 1, unique];
    capacities.sort_unstable();
    capacities.dedup();
    capacities
}

fn check_lirs(name: &str, requests: usize, unique: usize) {
    let trace = read_lirs(name).expect_counts(requests, unique);
    let capacities = lirs_capacities(unique);
    let hits = replay_all(&trace, &capacities);
    // With room for every key, only first uses miss.
    assert_eq!(hits.last(), Some(&((requests - unique) as u64)), "{name}");
    // A larger LRU never hits less (LRU is a stack algorithm).
    assert!(hits.windows(2).all(|w| w[0] <= w[1]), "{name}: {hits:?}");
}

#[test]
fn lirs_2_pools() {
    check_lirs("2_pools", 100_000, 9_939);
}

#[test]
fn lirs_cpp() {
    check_lirs("cpp", 9_047, 1_223);
}

#[test]
fn lirs_cs() {
    check_lirs("cs", 6_781, 1_409);
}

#[test]
fn lirs_gli() {
    check_lirs("gli", 6_015, 2_529);
}

#[test]
fn lirs_multi1() {
    check_lirs("multi1", 15_858, 2_606);
}

#[test]
fn lirs_multi2() {
    check_lirs("multi2", 26_311, 5_684);
}

#[test]
fn lirs_multi3() {
    check_lirs("multi3", 30_241, 7_454);
}

#[test]
fn lirs_ps() {
    check_lirs("ps", 10_448, 3_083);
}

#[test]
fn lirs_sprite() {
    check_lirs("sprite", 133_996, 7_075);
}

#[test]
fn lirs_zigzag() {
    check_lirs("zigzag", 52_001, 2_001);
}

/// `loop` cycles over 1,011 keys: an exact LRU smaller than the cycle evicts every key just before
/// it comes round again, so it never hits.
#[test]
fn lirs_loop_never_hits_below_its_cycle() {
    let trace = read_lirs("loop").expect_counts(505_500, 1_011);
    let capacities = [1, 500, 1_010, 1_011];
    let hits = replay_all(&trace, &capacities);
    assert_eq!(hits, [0, 0, 0, 505_500 - 1_011]);
}

/// The ARC paper (Megiddo & Modha, FAST '03) publishes LRU's hit ratios on OLTP, to two decimals.
#[test]
fn arc_oltp_matches_the_published_lru_hit_ratios() {
    let trace = read_arc("OLTP").expect_counts(914_145, 186_880);
    let published = [
        (1_000, "32.83"),
        (2_000, "42.47"),
        (5_000, "53.65"),
        (10_000, "60.70"),
        (15_000, "64.63"),
    ];
    let capacities: Vec<usize> = published.iter().map(|&(capacity, _)| capacity).collect();
    let hits = replay_all(&trace, &capacities);
    for (&(capacity, ratio), hits) in published.iter().zip(hits) {
        let measured = format!("{:.2}", 100.0 * hits as f64 / trace.requests.len() as f64);
        assert_eq!(
            measured, ratio,
            "OLTP at {capacity} entries: LRU hit ratio (%) differs from the ARC paper's"
        );
    }
}

/// The reference itself, on a sequence small enough to check by hand.
#[test]
fn reference_lru_is_an_lru() {
    let mut lru = ReferenceLru::new(2, 4);
    let hits: Vec<bool> = [0, 1, 0, 2, 1, 0, 0, 3, 2]
        .iter()
        .map(|&id| lru.access(id))
        .collect();
    // 0 1 | 0 hit | 2 evicts 1 | 1 evicts 0 | 0 evicts 2 | 0 hit | 3 evicts 1 | 2 evicts 0
    assert_eq!(
        hits,
        [false, false, true, false, false, false, true, false, false]
    );
    assert_eq!(lru.order(), [2, 3]);
}
