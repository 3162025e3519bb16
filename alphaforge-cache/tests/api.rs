//! Unit tests of every public operation and every error of the Rust API.

use alphaforge_cache::{
    Cache, CacheEntry, Clock, Error, ManualClock, PutOptions, RemovalCause, Stats, MAX_SHARDS,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Log = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>, RemovalCause)>>>;

/// A one-shard cache (exact LRU) on a manual clock, with a listener that logs every removal.
fn cache_with(
    max: usize,
    configure: impl FnOnce(alphaforge_cache::CacheBuilder) -> alphaforge_cache::CacheBuilder,
) -> (Cache, ManualClock, Log) {
    let time = ManualClock::new();
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let builder = Cache::builder(max)
        .shards(1)
        .clock(Clock::manual(&time))
        .eviction_listener(move |k, v, cause| {
            sink.lock().unwrap().push((k.to_vec(), v.to_vec(), cause))
        });
    (configure(builder).build().unwrap(), time, log)
}

fn keys(cache: &Cache) -> Vec<Vec<u8>> {
    cache.iter().map(|e| e.key).collect()
}

fn taken(log: &Log) -> Vec<(Vec<u8>, Vec<u8>, RemovalCause)> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn build_rejects_invalid_configuration() {
    assert_eq!(
        Cache::new(0).unwrap_err(),
        Error::InvalidMaxEntries { given: 0 }
    );
    assert!(matches!(
        Cache::new(usize::MAX),
        Err(Error::InvalidMaxEntries { .. })
    ));
    assert_eq!(
        Cache::builder(10).max_bytes(0).build().unwrap_err(),
        Error::InvalidMaxBytes
    );
    assert_eq!(
        Cache::builder(10)
            .default_ttl(Duration::ZERO)
            .build()
            .unwrap_err(),
        Error::ZeroTtl
    );
    assert_eq!(
        Cache::builder(10).shards(0).build().unwrap_err(),
        Error::InvalidShards {
            given: 0,
            max_entries: 10
        }
    );
    assert_eq!(
        Cache::builder(4).shards(8).build().unwrap_err(),
        Error::InvalidShards {
            given: 8,
            max_entries: 4
        }
    );
    assert!(matches!(
        Cache::builder(1_000_000).shards(MAX_SHARDS + 1).build(),
        Err(Error::InvalidShards { .. })
    ));
    // Errors read as sentences.
    assert!(Error::ZeroTtl.to_string().contains("TTL"));
    assert!(Error::InvalidMaxEntries { given: 0 }
        .to_string()
        .contains("max_entries"));
}

#[test]
fn defaults_are_reported() {
    let cache = Cache::new(100_000).unwrap();
    assert_eq!(cache.max_entries(), 100_000);
    assert_eq!(cache.max_bytes(), None);
    assert_eq!(cache.default_ttl(), None);
    assert_eq!(
        cache.shard_count(),
        alphaforge_cache::default_shard_count(100_000)
    );
    assert!(!cache.clock().is_manual());
    assert!(format!("{cache:?}").contains("max_entries: 100000"));
    // A tiny cache has one shard and is an exact LRU.
    assert_eq!(Cache::new(3).unwrap().shard_count(), 1);
}

#[test]
fn get_put_and_recency() {
    let (cache, _, log) = cache_with(3, |b| b);
    assert_eq!(cache.get(b"a"), None);
    cache.put(b"a", b"1").unwrap();
    cache.put(b"b", b"2").unwrap();
    cache.put(b"c", b"3").unwrap();
    assert_eq!(keys(&cache), [b"c".to_vec(), b"b".to_vec(), b"a".to_vec()]);
    assert_eq!(cache.get(b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(keys(&cache), [b"a".to_vec(), b"c".to_vec(), b"b".to_vec()]);
    cache.put(b"d", b"4").unwrap();
    assert_eq!(
        taken(&log),
        [(b"b".to_vec(), b"2".to_vec(), RemovalCause::Evicted)]
    );
    assert_eq!(cache.len(), 3);
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.inserts, stats.evictions),
        (1, 1, 4, 1)
    );
}

#[test]
fn empty_keys_and_values_are_entries() {
    let (cache, _, _) = cache_with(3, |b| b);
    cache.put(b"", b"").unwrap();
    assert_eq!(cache.get(b"").as_deref(), Some(&b""[..]));
    assert!(cache.contains(b""));
    assert_eq!(cache.weight(), 0);
}

#[test]
fn get_into_reuses_the_buffer() {
    let (cache, _, _) = cache_with(3, |b| b);
    cache.put(b"k", b"value").unwrap();
    let mut buf = b"old contents".to_vec();
    assert!(cache.get_into(b"k", &mut buf));
    assert_eq!(buf, b"value");
    assert!(!cache.get_into(b"missing", &mut buf));
    assert_eq!(buf, b"value", "a miss leaves the buffer alone");
}

#[test]
fn peek_and_contains_leave_recency_and_counters() {
    let (cache, _, _) = cache_with(2, |b| b);
    cache.put(b"a", b"1").unwrap();
    cache.put(b"b", b"2").unwrap();
    assert_eq!(cache.peek(b"a").as_deref(), Some(&b"1"[..]));
    assert!(cache.contains(b"a"));
    assert!(!cache.contains(b"z"));
    assert_eq!(cache.peek(b"z"), None);
    cache.put(b"c", b"3").unwrap();
    assert!(
        !cache.contains(b"a"),
        "peek did not protect a from eviction"
    );
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (0, 0));
}

#[test]
fn update_replaces_and_notifies() {
    let (cache, _, log) = cache_with(3, |b| b);
    cache.put(b"a", b"1").unwrap();
    cache.put(b"b", b"2").unwrap();
    cache.put(b"a", b"one").unwrap();
    assert_eq!(keys(&cache), [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(cache.get(b"a").as_deref(), Some(&b"one"[..]));
    assert_eq!(
        taken(&log),
        [(b"a".to_vec(), b"1".to_vec(), RemovalCause::Replaced)]
    );
    let stats = cache.stats();
    assert_eq!(
        (stats.inserts, stats.updates, stats.entries, stats.weight),
        (2, 1, 2, 6)
    );
}

#[test]
fn remove_returns_the_value() {
    let (cache, _, log) = cache_with(3, |b| b);
    cache.put(b"a", b"1").unwrap();
    assert_eq!(cache.remove(b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(cache.remove(b"a"), None);
    assert!(cache.is_empty());
    assert_eq!(
        taken(&log),
        [(b"a".to_vec(), b"1".to_vec(), RemovalCause::Removed)]
    );
    assert_eq!(cache.stats().removals, 1);
}

#[test]
fn clear_empties_and_reports() {
    let (cache, time, log) = cache_with(5, |b| b);
    cache.put(b"a", b"1").unwrap();
    cache.put_with_ttl(b"b", b"2", secs(1)).unwrap();
    time.advance(secs(1));
    cache.clear();
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.weight(), 0);
    let mut events = taken(&log);
    events.sort();
    assert_eq!(
        events,
        [
            (b"a".to_vec(), b"1".to_vec(), RemovalCause::Cleared),
            (b"b".to_vec(), b"2".to_vec(), RemovalCause::Expired)
        ]
    );
    let stats = cache.stats();
    assert_eq!((stats.removals, stats.expirations), (1, 1));
    cache.put(b"c", b"3").unwrap();
    assert_eq!(keys(&cache), [b"c".to_vec()]);
}

#[test]
fn ttl_deadline_is_put_time_plus_ttl_and_get_does_not_extend_it() {
    let (cache, time, log) = cache_with(5, |b| b.default_ttl(secs(10)));
    cache.put(b"a", b"1").unwrap();
    cache.put_with_ttl(b"b", b"2", secs(3)).unwrap();
    cache
        .put_with(
            b"c",
            b"3",
            PutOptions {
                ttl: Some(secs(20)),
                weight: None,
            },
        )
        .unwrap();
    time.advance(secs(2));
    assert!(
        cache.get(b"b").is_some(),
        "a get does not extend the deadline"
    );
    assert_eq!(cache.remaining_ttl(b"b"), Some(Some(secs(1))));
    time.advance(secs(1));
    assert_eq!(cache.get(b"b"), None, "expired when now == deadline");
    assert_eq!(cache.remaining_ttl(b"b"), None);
    assert_eq!(
        taken(&log),
        [(b"b".to_vec(), b"2".to_vec(), RemovalCause::Expired)]
    );
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.expirations), (1, 1, 1));
    time.advance(secs(7));
    assert!(!cache.contains(b"a"));
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.remaining_ttl(b"c"), Some(Some(secs(10))));
}

#[test]
fn entries_without_ttl_never_expire() {
    let (cache, time, _) = cache_with(5, |b| b);
    cache.put(b"a", b"1").unwrap();
    time.advance(Duration::from_secs(1 << 40));
    assert_eq!(cache.remaining_ttl(b"a"), Some(None));
    assert!(cache.get(b"a").is_some());
}

#[test]
fn zero_ttl_is_refused_and_huge_ttl_saturates() {
    let (cache, time, _) = cache_with(5, |b| b);
    cache.put(b"a", b"old").unwrap();
    assert_eq!(
        cache
            .put_with_ttl(b"a", b"new", Duration::ZERO)
            .unwrap_err(),
        Error::ZeroTtl
    );
    assert_eq!(cache.get(b"a").as_deref(), Some(&b"old"[..]));
    cache.put_with_ttl(b"b", b"2", Duration::MAX).unwrap();
    time.advance(secs(1_000_000));
    assert!(cache.contains(b"b"));
}

#[test]
fn expire_reclaims_and_counts() {
    let (cache, time, log) = cache_with(10, |b| b);
    for (i, ttl) in [1u64, 2, 3].iter().enumerate() {
        cache.put_with_ttl([i as u8], b"v", secs(*ttl)).unwrap();
    }
    cache.put(b"forever", b"v").unwrap();
    assert_eq!(cache.expire(), 0);
    time.advance(secs(2));
    assert_eq!(cache.expire(), 2);
    assert_eq!(cache.expire(), 0);
    assert_eq!(taken(&log).len(), 2);
    assert_eq!(cache.len(), 2);
    time.advance(secs(1));
    assert_eq!(cache.len(), 1, "len reclaims expired entries");
    assert_eq!(cache.stats().expirations, 3);
}

#[test]
fn byte_bound_evicts_lru_and_refuses_too_heavy() {
    let (cache, _, log) = cache_with(100, |b| b.max_bytes(10));
    cache.put(b"a", b"1234").unwrap(); // weight 5
    cache.put(b"b", b"1234").unwrap(); // weight 5, total 10
    assert_eq!(cache.weight(), 10);
    cache.put(b"c", b"12").unwrap(); // weight 3 -> evicts a
    assert_eq!(keys(&cache), [b"c".to_vec(), b"b".to_vec()]);
    assert_eq!(taken(&log)[0].2, RemovalCause::Evicted);
    let err = cache.put(b"b", b"12345678901").unwrap_err();
    assert_eq!(
        err,
        Error::EntryTooHeavy {
            weight: 12,
            max_bytes: 10
        }
    );
    assert!(err.to_string().contains("unchanged"));
    assert_eq!(
        cache.get(b"b").as_deref(),
        Some(&b"1234"[..]),
        "the old value stays"
    );
    // An entry exactly max_bytes heavy fits, evicting everything else.
    cache.put(b"d", b"123456789").unwrap();
    assert_eq!(keys(&cache), [b"d".to_vec()]);
    assert_eq!(cache.weight(), 10);
}

#[test]
fn caller_weights_count_against_max_bytes() {
    let (cache, _, _) = cache_with(100, |b| b.max_bytes(100));
    let heavy = PutOptions {
        ttl: None,
        weight: Some(60),
    };
    cache.put_with(b"a", b"x", heavy).unwrap();
    cache.put_with(b"b", b"x", heavy).unwrap();
    assert_eq!(keys(&cache), [b"b".to_vec()]);
    assert_eq!(cache.weight(), 60);
    let too_heavy = PutOptions {
        ttl: None,
        weight: Some(101),
    };
    assert!(matches!(
        cache.put_with(b"c", b"x", too_heavy),
        Err(Error::EntryTooHeavy { .. })
    ));
}

#[test]
fn byte_bound_holds_across_shards() {
    // Each shard is an LRU, but the byte bound is global: an entry as heavy as max_bytes still
    // fits, evicting from other shards.
    let cache = Cache::builder(64).shards(8).max_bytes(100).build().unwrap();
    for i in 0..40u8 {
        cache.put([i], [0u8; 9]).unwrap();
        assert!(cache.weight() <= 100);
    }
    cache.put(b"big", [0u8; 97]).unwrap();
    assert_eq!(cache.weight(), 100);
    assert_eq!(keys(&cache), [b"big".to_vec()]);
}

#[test]
fn small_cache_with_many_shards_never_refuses() {
    let cache = Cache::builder(8).shards(8).build().unwrap();
    for i in 0..1000u32 {
        cache.put(i.to_le_bytes(), b"v").unwrap();
        assert!(
            cache.contains(i.to_le_bytes()),
            "a fresh entry is always kept"
        );
        assert!(cache.len() <= 8);
    }
}

#[test]
fn resize_shrinks_by_evicting_lru() {
    let (cache, _, log) = cache_with(5, |b| b);
    for k in [b"a", b"b", b"c", b"d", b"e"] {
        cache.put(k, b"v").unwrap();
    }
    cache.resize(2).unwrap();
    assert_eq!(cache.max_entries(), 2);
    assert_eq!(keys(&cache), [b"e".to_vec(), b"d".to_vec()]);
    assert_eq!(taken(&log).len(), 3);
    cache.resize(4).unwrap();
    cache.put(b"f", b"v").unwrap();
    cache.put(b"g", b"v").unwrap();
    assert_eq!(cache.len(), 4);
    assert_eq!(
        cache.resize(0).unwrap_err(),
        Error::InvalidMaxEntries { given: 0 }
    );
    let sharded = Cache::builder(100).shards(4).build().unwrap();
    assert!(matches!(
        sharded.resize(3),
        Err(Error::InvalidShards { .. })
    ));
}

#[test]
fn set_max_bytes_evicts() {
    let (cache, _, _) = cache_with(10, |b| b.max_bytes(100));
    for k in [b"a", b"b", b"c"] {
        cache.put(k, [0u8; 9]).unwrap();
    }
    cache.set_max_bytes(20).unwrap();
    assert_eq!(cache.max_bytes(), Some(20));
    assert_eq!(keys(&cache), [b"c".to_vec(), b"b".to_vec()]);
    assert_eq!(cache.set_max_bytes(0).unwrap_err(), Error::InvalidMaxBytes);
    let unbounded = Cache::new(10).unwrap();
    assert_eq!(
        unbounded.set_max_bytes(5).unwrap_err(),
        Error::InvalidMaxBytes
    );
}

#[test]
fn stats_and_reset() {
    let (cache, _, _) = cache_with(2, |b| b);
    cache.put(b"a", b"1").unwrap();
    cache.get(b"a");
    cache.get(b"b");
    let stats = cache.stats();
    assert_eq!(
        stats,
        Stats {
            hits: 1,
            misses: 1,
            inserts: 1,
            entries: 1,
            weight: 2,
            ..Stats::default()
        }
    );
    assert_eq!(stats.hit_ratio(), 0.5);
    cache.reset_stats();
    assert_eq!(
        cache.stats(),
        Stats {
            entries: 1,
            weight: 2,
            ..Stats::default()
        }
    );
}

#[test]
fn iter_is_a_snapshot_most_recent_first_with_ttls() {
    let (cache, time, _) = cache_with(5, |b| b);
    cache.put(b"a", b"1").unwrap();
    cache.put_with_ttl(b"b", b"2", secs(5)).unwrap();
    cache.put_with_ttl(b"gone", b"x", secs(1)).unwrap();
    time.advance(secs(1));
    let entries: Vec<CacheEntry> = cache.iter().collect();
    assert_eq!(
        entries,
        [
            CacheEntry {
                key: b"b".to_vec(),
                value: b"2".to_vec(),
                ttl: Some(secs(4))
            },
            CacheEntry {
                key: b"a".to_vec(),
                value: b"1".to_vec(),
                ttl: None
            },
        ]
    );
    let mut iter = cache.iter();
    assert_eq!(iter.len(), 2);
    cache.clear();
    assert_eq!(
        iter.next().map(|e| e.key),
        Some(b"b".to_vec()),
        "a snapshot outlives changes"
    );
}

#[test]
fn get_many_and_put_many() {
    let (cache, _, _) = cache_with(10, |b| b);
    cache
        .put_many(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
        .unwrap();
    assert_eq!(keys(&cache), [b"c".to_vec(), b"b".to_vec(), b"a".to_vec()]);
    let got = cache.get_many(&[&b"a"[..], b"zz", b"c"]);
    assert_eq!(got, [Some(b"1".to_vec()), None, Some(b"3".to_vec())]);
    assert_eq!(
        keys(&cache),
        [b"c".to_vec(), b"a".to_vec(), b"b".to_vec()],
        "gets in order"
    );
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts), (2, 1, 3));
    // A refused entry refuses the whole batch.
    let bounded = Cache::builder(10).max_bytes(4).build().unwrap();
    let err = bounded
        .put_many(&[(&b"a"[..], &b"1"[..]), (b"b", b"123456")])
        .unwrap_err();
    assert!(matches!(err, Error::EntryTooHeavy { .. }));
    assert!(bounded.is_empty());
}

#[test]
fn batches_across_shards_keep_every_key() {
    let cache = Cache::builder(10_000).shards(16).build().unwrap();
    let items: Vec<(Vec<u8>, Vec<u8>)> = (0..1000u32)
        .map(|i| (i.to_be_bytes().to_vec(), (i * 7).to_le_bytes().to_vec()))
        .collect();
    cache.put_many(&items).unwrap();
    let keys: Vec<&Vec<u8>> = items.iter().map(|(k, _)| k).collect();
    let values = cache.get_many(&keys);
    for ((_, v), got) in items.iter().zip(values) {
        assert_eq!(got.as_ref(), Some(v));
    }
    assert_eq!(cache.len(), 1000);
}

#[test]
fn get_or_insert_with_computes_once_per_miss() {
    let (cache, _, _) = cache_with(10, |b| b);
    let mut calls = 0;
    let v = cache.get_or_insert_with(b"k", || {
        calls += 1;
        b"computed".to_vec()
    });
    assert_eq!(v, b"computed");
    let v = cache.get_or_insert_with(b"k", || unreachable!("a hit does not compute"));
    assert_eq!(v, b"computed");
    assert_eq!(calls, 1);
    let failed: Result<Vec<u8>, &str> = cache.try_get_or_insert_with(b"e", || Err("boom"));
    assert_eq!(failed, Err("boom"));
    assert!(!cache.contains(b"e"), "a failed computation stores nothing");
}

#[test]
fn get_or_insert_with_returns_but_does_not_store_a_too_heavy_value() {
    let (cache, _, _) = cache_with(10, |b| b.max_bytes(4));
    assert_eq!(
        cache.get_or_insert_with(b"k", || b"too heavy".to_vec()),
        b"too heavy"
    );
    assert!(!cache.contains(b"k"));
}

#[test]
fn get_or_insert_with_races_compute_once() {
    let cache = Arc::new(Cache::new(100).unwrap());
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, calls, barrier) = (cache.clone(), calls.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache.get_or_insert_with(b"shared", || {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    b"value".to_vec()
                })
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), b"value");
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn panicking_factory_lets_others_compute() {
    let cache = Cache::new(10).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cache.get_or_insert_with(b"k", || panic!("factory failed"))
    }));
    assert!(result.is_err());
    assert_eq!(cache.get_or_insert_with(b"k", || b"ok".to_vec()), b"ok");
}

#[test]
fn listener_may_call_the_cache() {
    let cache: Arc<std::sync::OnceLock<Arc<Cache>>> = Arc::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (handle, sink) = (cache.clone(), seen.clone());
    let built = Cache::builder(1)
        .eviction_listener(move |key, _, _| {
            // Re-entering the cache from the listener must not deadlock.
            let c = handle.get().unwrap();
            sink.lock().unwrap().push((key.to_vec(), c.len()));
        })
        .build()
        .unwrap();
    cache.set(Arc::new(built)).unwrap();
    let c = cache.get().unwrap();
    c.put(b"a", b"1").unwrap();
    c.put(b"b", b"2").unwrap();
    assert_eq!(*seen.lock().unwrap(), [(b"a".to_vec(), 1)]);
}

#[test]
fn panicking_listener_loses_no_notification_and_no_entry() {
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    let cache = Cache::builder(10)
        .shards(1)
        .eviction_listener(move |_, _, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            panic!("listener failed");
        })
        .build()
        .unwrap();
    cache.put(b"a", b"1").unwrap();
    cache.put(b"b", b"2").unwrap();
    let cleared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cache.clear()));
    assert!(cleared.is_err(), "the listener's panic reaches the caller");
    assert_eq!(
        count.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "both were told"
    );
    assert!(cache.is_empty());
    cache.put(b"c", b"3").unwrap();
    assert_eq!(cache.get(b"c").as_deref(), Some(&b"3"[..]));
}

#[test]
fn cache_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Cache>();
    assert_send_sync::<ManualClock>();
}

#[test]
fn removal_cause_names() {
    let names: Vec<&str> = [
        RemovalCause::Evicted,
        RemovalCause::Expired,
        RemovalCause::Removed,
        RemovalCause::Replaced,
        RemovalCause::Cleared,
    ]
    .iter()
    .map(|c| c.as_str())
    .collect();
    assert_eq!(
        names,
        ["evicted", "expired", "removed", "replaced", "cleared"]
    );
}

/// Reads replayed by `record` (`record_reads` or `record_reads_later`) on a 4-shard cache: hits,
/// misses and each shard's recency.
fn check_reads_across_shards(record: impl Fn(&Cache, &[Vec<u8>], u64)) {
    let (cache, _, _) = cache_with(400, |b| b.shards(4));
    let keys: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_le_bytes().to_vec()).collect();
    for key in &keys {
        cache.put(key, b"v").unwrap();
    }
    let mut reads = keys.clone();
    reads.extend((1000..1005u32).map(|i| i.to_le_bytes().to_vec()));
    record(&cache, &reads, 2);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (100, 7));
    // Each shard's least recently used key is now its first one replayed, so with every shard
    // full, one more put in a shard evicts that shard's first-read key.
    record(&cache, &keys[50..], 0);
    cache.resize(4).unwrap(); // keep one entry per shard: the most recently read of each
    for key in self::keys(&cache) {
        let index = keys.iter().position(|k| *k == key).unwrap();
        assert!(
            index >= 50,
            "a key read last in its shard survives, not {index}"
        );
    }
}

#[test]
fn record_reads_across_shards() {
    check_reads_across_shards(|cache, reads, misses| cache.record_reads(reads, misses));
}

#[test]
fn reads_handed_over_give_the_results_of_reads_replayed_at_once() {
    // Two one-shard caches with the same puts: one replays each batch at once, the other hands
    // it over (many batches, so that some pile up and the caller replays them itself). A put
    // every few batches evicts: the same keys must go, and the counters must agree.
    let at_once = Cache::builder(64).shards(1).build().unwrap();
    let later = Cache::builder(64).shards(1).build().unwrap();
    for i in 0..64u32 {
        at_once.put(i.to_le_bytes(), b"v").unwrap();
        later.put(i.to_le_bytes(), b"v").unwrap();
    }
    let mut state = 7u64;
    for round in 0..200u32 {
        let batch: Vec<[u8; 4]> = (0..100)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as u32 % 80).to_le_bytes() // some keys absent: misses
            })
            .collect();
        at_once.record_reads(&batch, 1);
        later.record_reads_later(&batch, 1);
        if round % 10 == 9 {
            let fresh = (1000 + round).to_le_bytes();
            at_once.put(fresh, b"v").unwrap();
            later.put(fresh, b"v").unwrap();
        }
    }
    let (a, b) = (at_once.stats(), later.stats());
    assert_eq!(
        (a.hits, a.misses, a.evictions),
        (b.hits, b.misses, b.evictions)
    );
    assert_eq!(self::keys(&at_once), self::keys(&later));
}

#[test]
fn reads_handed_over_across_shards() {
    check_reads_across_shards(|cache, reads, misses| cache.record_reads_later(reads, misses));
}

#[test]
fn dropping_a_cache_with_reads_queued_neither_blocks_nor_panics() {
    for _ in 0..20 {
        let cache = Cache::new(100).unwrap();
        cache.put(b"a", b"1").unwrap();
        cache.record_reads_later(&[&b"a"[..]; 100], 0);
        drop(cache); // queued reads or not: the background thread skips a dropped cache
    }
}

#[test]
fn record_reads_replays_recency_and_counts() {
    let (cache, _, _) = cache_with(3, |b| b);
    cache.put(b"a", b"1").unwrap();
    cache.put(b"b", b"2").unwrap();
    cache.put(b"c", b"3").unwrap();
    cache.record_reads(&[&b"a"[..], b"gone", b"b"], 2);
    assert_eq!(keys(&cache), [b"b".to_vec(), b"a".to_vec(), b"c".to_vec()]);
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses),
        (2, 3),
        "a key no longer stored counts a miss"
    );
    cache.put(b"d", b"4").unwrap();
    assert!(
        !cache.contains(b"c"),
        "the replayed reads decided the eviction"
    );
}
