//! The shared snapshot test vectors of `tests/vectors/`: for every manifest there, the Rust
//! writer produces exactly the committed files of every writer (Rust, C, Python), and every
//! one of them loads back into the manifest's state.
//!
//! `AFC_WRITE_VECTORS=1 cargo test -p alphaforge-cache --test snapshot_vectors` rewrites the
//! `rust-*.afcs` files (`tests/vectors/generate` runs every writer).

use alphaforge_cache::{Cache, Clock, LoadOptions, ManualClock, PutOptions, SaveOptions};
use std::path::PathBuf;
use std::time::Duration;

const NAMES: [&str; 4] = ["empty", "small", "random", "large"];
const WRITERS: [&str; 3] = ["rust", "c", "python"];
/// The time of the manual clock when a vector is saved (any would do).
const SAVED_AT: u64 = 1_000_000_000_000;

struct Entry {
    key: Vec<u8>,
    value: Vec<u8>,
    ttl_ns: Option<u64>,
    weight: Option<u32>,
}

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The entries of `NAME.entries`, least recently used first.
fn manifest(name: &str) -> Vec<Entry> {
    let text = std::fs::read_to_string(vectors().join(format!("{name}.entries"))).unwrap();
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|part| part.strip_prefix(&format!("{name}=")))
                    .unwrap_or_else(|| panic!("no {name} in {line}"))
                    .to_string()
            };
            Entry {
                key: hex(&field("key")),
                value: hex(&field("value")),
                ttl_ns: match field("ttl_ns").as_str() {
                    "none" => None,
                    n => Some(n.parse().unwrap()),
                },
                weight: match field("weight").as_str() {
                    "default" => None,
                    n => Some(n.parse().unwrap()),
                },
            }
        })
        .collect()
}

fn cache_at(time: u64, max_entries: usize) -> Cache {
    let clock = ManualClock::new();
    clock.set(Duration::from_nanos(time));
    Cache::builder(max_entries.max(1))
        .shards(1)
        .clock(Clock::manual(&clock))
        .build()
        .unwrap()
}

/// The manifest's state in a cache: its entries put in order at `SAVED_AT`.
fn build(entries: &[Entry]) -> Cache {
    let cache = cache_at(SAVED_AT, entries.len());
    for e in entries {
        let options = PutOptions {
            ttl: e.ttl_ns.map(Duration::from_nanos),
            weight: e.weight,
        };
        cache.put_with(&e.key, &e.value, options).unwrap();
    }
    cache
}

fn saved(cache: &Cache) -> Vec<u8> {
    let mut bytes = Vec::new();
    cache.save_to(&mut bytes, SaveOptions::default()).unwrap();
    bytes
}

#[test]
fn every_writer_produces_the_same_bytes() {
    if std::env::var_os("AFC_WRITE_VECTORS").is_some() {
        for name in NAMES {
            let rust = vectors().join(format!("rust-{name}.afcs"));
            std::fs::write(&rust, saved(&build(&manifest(name)))).unwrap();
            eprintln!("wrote {}", rust.display());
        }
    }
    for name in NAMES {
        let bytes = saved(&build(&manifest(name)));
        for writer in WRITERS {
            let path = vectors().join(format!("{writer}-{name}.afcs"));
            let committed = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run tests/vectors/generate)", path.display()));
            assert!(
                committed == bytes,
                "{} differs from what the Rust writer writes now",
                path.display()
            );
        }
    }
}

#[test]
fn every_writers_files_load_into_the_manifest_state() {
    for name in NAMES {
        let entries = manifest(name);
        for writer in WRITERS {
            let path = vectors().join(format!("{writer}-{name}.afcs"));
            // Loaded at another time: the remaining TTLs are the manifest's.
            let cache = cache_at(7, entries.len());
            let info = cache.load_with(&path, LoadOptions::default()).unwrap();
            assert_eq!(
                info.entries_kept as usize,
                entries.len(),
                "{}",
                path.display()
            );
            let loaded: Vec<_> = cache.iter().collect();
            assert_eq!(loaded.len(), entries.len());
            for (got, want) in loaded.iter().rev().zip(&entries) {
                assert_eq!(got.key, want.key);
                assert_eq!(got.value, want.value);
                assert_eq!(got.ttl, want.ttl_ns.map(Duration::from_nanos));
            }
            let weight: u64 = entries
                .iter()
                .map(|e| {
                    e.weight
                        .map_or((e.key.len() + e.value.len()) as u64, u64::from)
                })
                .sum();
            assert_eq!(cache.weight(), weight, "{}", path.display());
            // Saved again: the same bytes (so the weights came back too).
            assert!(saved(&cache) == std::fs::read(&path).unwrap());
        }
    }
}
