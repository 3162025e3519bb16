//! The shared snapshot test vectors of `tests/vectors/`: for every manifest there, the Rust
//! writer produces exactly the committed files of every writer (Rust, C, Python), and every
//! one of them loads back into the manifest's state. The `future-*.afcs` files (the small state
//! as later versions of the format could write it) pin what this reader does with them: a newer
//! minor version loads, a critical extension record, an unknown required flag and another major
//! version are refused as unsupported.
//!
//! `AFC_WRITE_VECTORS=1 cargo test -p alphaforge-cache --test snapshot_vectors` rewrites the
//! `rust-*.afcs` files (`tests/vectors/generate` runs every writer).

use alphaforge_cache::snapshot::verify;
use alphaforge_cache::{
    Cache, CacheEntry, Clock, LoadOptions, ManualClock, PutOptions, SaveOptions, SnapshotErrorKind,
    Stats,
};
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
            // `save` renames a complete temporary file over the vector: the other tests, which
            // read the vectors meanwhile, never see one cut short.
            build(&manifest(name)).save(&rust).unwrap();
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

/// Checks that `cache` holds exactly `entries` (least recently used first), with their
/// remaining TTLs and their weights; `what` names the file it was loaded from.
fn assert_holds(cache: &Cache, entries: &[Entry], what: &str) {
    let loaded: Vec<_> = cache.iter().collect();
    assert_eq!(loaded.len(), entries.len(), "{what}");
    for (got, want) in loaded.iter().rev().zip(entries) {
        assert_eq!(got.key, want.key, "{what}");
        assert_eq!(got.value, want.value, "{what}");
        assert_eq!(got.ttl, want.ttl_ns.map(Duration::from_nanos), "{what}");
    }
    let weight: u64 = entries
        .iter()
        .map(|e| {
            e.weight
                .map_or((e.key.len() + e.value.len()) as u64, u64::from)
        })
        .sum();
    assert_eq!(cache.weight(), weight, "{what}");
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
            assert_holds(&cache, &entries, &path.display().to_string());
            // Saved again: the same bytes (so the weights came back too).
            assert!(saved(&cache) == std::fs::read(&path).unwrap());
        }
    }
}

/// The minor version of `future-minor.afcs` and `future-critical.afcs`.
const FUTURE_MINOR: u16 = 7;

#[test]
fn a_newer_minor_version_loads_into_the_small_state() {
    let entries = manifest("small");
    let path = vectors().join("future-minor.afcs");
    let what = path.display().to_string();
    let file_bytes = std::fs::metadata(&path).unwrap().len();
    // From the file, and from a stream (whose length the reader does not know).
    for from_stream in [false, true] {
        let cache = cache_at(7, entries.len());
        cache.put(b"replaced", b"by the load").unwrap();
        let info = if from_stream {
            let file = std::fs::File::open(&path).unwrap();
            cache.load_from(file, LoadOptions::default()).unwrap()
        } else {
            cache.load_with(&path, LoadOptions::default()).unwrap()
        };
        assert_eq!((info.format_major, info.format_minor), (1, FUTURE_MINOR));
        assert_eq!(info.entries, entries.len() as u64, "{what}");
        assert_eq!(info.entries_kept, entries.len() as u64, "{what}");
        if !from_stream {
            assert_eq!(info.file_bytes, file_bytes);
        }
        assert_holds(&cache, &entries, &what);
        // Saved again: the small state's 1.0 file (the records a 1.0 reader skipped are gone).
        let small = vectors().join("python-small.afcs");
        assert!(saved(&cache) == std::fs::read(small).unwrap());
    }
    let info = verify(&path).unwrap();
    assert_eq!((info.format_major, info.format_minor), (1, FUTURE_MINOR));
    assert_eq!((info.entries, info.file_bytes), (6, file_bytes));
}

/// Everything a failed load must leave as it was.
fn fingerprint(cache: &Cache) -> (Vec<CacheEntry>, Stats, u64) {
    (cache.iter().collect(), cache.stats(), cache.weight())
}

#[test]
fn a_critical_record_an_unknown_flag_and_another_major_version_are_refused() {
    let cases = [
        ("future-critical", "needs header extension 0xffff"),
        ("future-flag", "header flags 0x80000000"),
        ("future-major", "format version 2.0 is not supported"),
    ];
    for (name, reason) in cases {
        let path = vectors().join(format!("{name}.afcs"));
        let cache = cache_at(SAVED_AT, 8);
        let ttl = PutOptions {
            ttl: Some(Duration::from_secs(50)),
            weight: None,
        };
        cache.put_with(b"keep", b"me", ttl).unwrap();
        let weighted = PutOptions {
            ttl: None,
            weight: Some(3),
        };
        cache.put_with(b"and", b"this", weighted).unwrap();
        assert!(cache.get(b"keep").is_some());
        let before = fingerprint(&cache);
        assert_eq!(before.0.len(), 2);

        let err = cache.load(&path).unwrap_err();
        assert_eq!(err.kind(), SnapshotErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains(reason), "{name}: {err}");
        assert_eq!(err.path(), Some(path.as_path()));
        assert_eq!(fingerprint(&cache), before, "{name}: the cache changed");

        let file = std::fs::File::open(&path).unwrap();
        let err = cache.load_from(file, LoadOptions::default()).unwrap_err();
        assert_eq!(err.kind(), SnapshotErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains(reason), "{name}: {err}");
        assert_eq!(fingerprint(&cache), before, "{name}: the cache changed");

        let err = verify(&path).unwrap_err();
        assert_eq!(err.kind(), SnapshotErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains(reason), "{name}: {err}");
    }
}
