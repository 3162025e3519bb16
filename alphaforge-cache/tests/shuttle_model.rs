//! Model-checked concurrency tests: with `--features shuttle` the cache's locks and atomics come
//! from the shuttle model checker (see `src/lock.rs`), so these tests explore many thread
//! interleavings of the real locking code, detect deadlocks (shuttle fails a test when every thread
//! is blocked, or when a thread re-locks a mutex it holds), and check invariants after every run.
//!
//! Run with `cargo test -p alphaforge-cache --features shuttle --test shuttle_model`.
#![cfg(feature = "shuttle")]

use alphaforge_cache::{Cache, Clock, ManualClock, RemovalCause, Stats};
use shuttle::rand::{thread_rng, Rng};
use shuttle::thread;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// Schedules per test and scheduler: enough to find shallow races, few enough that the whole file
/// runs in seconds.
const ITERATIONS: usize = 1_000;

/// Runs `test` under shuttle's uniformly random scheduler, then under its PCT scheduler (which
/// favours schedules with a few well-placed preemptions, the shape of most ordering bugs).
fn explore<F>(test: F)
where
    F: Fn() + Send + Sync + Copy + 'static,
{
    shuttle::check_random(test, ITERATIONS);
    shuttle::check_pct(test, ITERATIONS / 2, 3);
}

// ----- helpers ------------------------------------------------------------------------------

/// Key number `id`.
fn key(id: u8) -> Vec<u8> {
    vec![b'k', id]
}

/// A value for key `id`: `len` copies of `id`, so that any value read can be checked against its
/// key.
fn value(id: u8, len: usize) -> Vec<u8> {
    vec![id; len]
}

/// Panics unless `v` is a value `value(key[1], _)` could have produced for `k`.
fn check_value(k: &[u8], v: &[u8]) {
    assert_eq!(k.len(), 2, "unexpected key {k:?}");
    assert!(
        !v.is_empty() && v.iter().all(|&b| b == k[1]),
        "corrupted value {v:?} for key {k:?}"
    );
}

/// Notifications per cause, counted by the eviction listener.
#[derive(Default)]
struct Heard {
    evicted: AtomicU64,
    expired: AtomicU64,
    removed: AtomicU64,
    replaced: AtomicU64,
    cleared: AtomicU64,
}

impl Heard {
    fn count(&self, k: &[u8], v: &[u8], cause: RemovalCause) {
        check_value(k, v);
        let counter = match cause {
            RemovalCause::Evicted => &self.evicted,
            RemovalCause::Expired => &self.expired,
            RemovalCause::Removed => &self.removed,
            RemovalCause::Replaced => &self.replaced,
            RemovalCause::Cleared => &self.cleared,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Checks the notifications against the statistics' counters.
    fn assert_matches(&self, stats: &Stats) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!(load(&self.evicted), stats.evictions, "{stats:?}");
        assert_eq!(load(&self.expired), stats.expirations, "{stats:?}");
        assert_eq!(
            load(&self.removed) + load(&self.cleared),
            stats.removals,
            "{stats:?}"
        );
        assert_eq!(load(&self.replaced), stats.updates, "{stats:?}");
    }
}

/// The invariants that must hold once every thread has stopped.
fn assert_quiescent(cache: &Cache, max_bytes: u64) {
    let len = cache.len();
    let weight = cache.weight();
    let stats = cache.stats();
    assert!(
        len <= cache.max_entries(),
        "len {len} > {}",
        cache.max_entries()
    );
    assert!(
        weight <= max_bytes,
        "weight {weight} > max_bytes {max_bytes}"
    );
    assert_eq!(stats.entries, len as u64, "{stats:?}");
    assert_eq!(stats.weight, weight, "{stats:?}");
    assert_eq!(
        stats.inserts - stats.evictions - stats.expirations - stats.removals,
        stats.entries,
        "{stats:?}"
    );
    // The snapshot agrees with the counters: unique keys, valid values, same count and weight.
    let entries: Vec<_> = cache.iter().collect();
    assert_eq!(entries.len(), len);
    let keys: HashSet<_> = entries.iter().map(|e| e.key.clone()).collect();
    assert_eq!(keys.len(), entries.len(), "duplicate keys in iter()");
    let mut total = 0;
    for e in &entries {
        check_value(&e.key, &e.value);
        total += (e.key.len() + e.value.len()) as u64;
    }
    assert_eq!(total, weight);
}

// ----- tests --------------------------------------------------------------------------------

/// Three threads put and get random keys of random weights on a 3-shard cache bounded to 6 entries
/// and 30 bytes (so puts evict across shards). Afterwards the bounds hold, every counter adds up,
/// every get was counted once, and the listener heard exactly what the counters say.
#[test]
fn concurrent_puts_and_gets_keep_bounds_and_stats() {
    const MAX_BYTES: u64 = 30;
    explore(|| {
        let heard = Arc::new(Heard::default());
        let h = Arc::clone(&heard);
        let cache = Arc::new(
            Cache::builder(6)
                .shards(3)
                .max_bytes(MAX_BYTES)
                .eviction_listener(move |k, v, cause| h.count(k, v, cause))
                .build()
                .unwrap(),
        );
        let gets = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let cache = Arc::clone(&cache);
                let gets = Arc::clone(&gets);
                thread::spawn(move || {
                    let mut rng = thread_rng();
                    for _ in 0..6 {
                        let id = rng.gen_range(0..8u8);
                        let k = key(id);
                        match rng.gen_range(0..4) {
                            0 => {
                                gets.fetch_add(1, Ordering::Relaxed);
                                if let Some(v) = cache.get(&k) {
                                    check_value(&k, &v);
                                }
                            }
                            1 => {
                                let ks: Vec<_> = [id, (id + 1) % 8].map(key).to_vec();
                                gets.fetch_add(ks.len() as u64, Ordering::Relaxed);
                                for (k, v) in ks.iter().zip(cache.get_many(&ks)) {
                                    if let Some(v) = v {
                                        check_value(k, &v);
                                    }
                                }
                            }
                            2 => {
                                // A snapshot locks every shard: no deadlock with the
                                // one-shard-at-a-time locking of puts and trims.
                                let entries: Vec<_> = cache.iter().collect();
                                let keys: HashSet<_> = entries.iter().map(|e| &e.key).collect();
                                assert_eq!(keys.len(), entries.len(), "duplicate keys");
                                for e in &entries {
                                    check_value(&e.key, &e.value);
                                }
                            }
                            _ => cache.put(&k, value(id, rng.gen_range(1..=12))).unwrap(),
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_quiescent(&cache, MAX_BYTES);
        let stats = cache.stats();
        assert_eq!(stats.hits + stats.misses, gets.load(Ordering::Relaxed));
        heard.assert_matches(&stats);
    });
}

/// Three threads race `get_or_insert_with` on one key: exactly one computes, all three get its
/// value, and the other two are counted as hits.
#[test]
fn get_or_insert_with_computes_once() {
    explore(|| {
        let cache = Arc::new(Cache::builder(4).shards(2).max_bytes(64).build().unwrap());
        let computed = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..3u8)
            .map(|t| {
                let cache = Arc::clone(&cache);
                let computed = Arc::clone(&computed);
                thread::spawn(move || {
                    cache.get_or_insert_with(key(1), || {
                        computed.fetch_add(1, Ordering::SeqCst);
                        thread::yield_now(); // stay in flight while others arrive
                                             // Each thread would compute a different (valid) value.
                        value(1, 3 + usize::from(t))
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            computed.load(Ordering::SeqCst),
            1,
            "computed more than once"
        );
        check_value(&key(1), &results[0]);
        assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
        assert_eq!(cache.peek(key(1)), Some(results[0].clone()));
        let stats = cache.stats();
        assert_eq!((stats.inserts, stats.hits), (1, 2), "{stats:?}");
        assert!(stats.misses >= 1, "{stats:?}");
    });
}

/// The first computation fails, and a waiting (or later) thread computes instead: nobody
/// deadlocks, exactly two computations run, and the other threads all get the stored value.
///
/// The failure is an `Err` from `try_get_or_insert_with`, not a panic: it leaves through the same
/// `PendingGuard` drop that clears the pending mark and wakes the waiters. A real panic cannot be
/// model-checked with shuttle 0.8: shuttle treats every mutex release made while the thread is
/// unwinding (`std::thread::panicking()`, even for a panic that `catch_unwind` will catch) as
/// poisoning, so it closes the mutex for good and drops its waiters, and a condvar notified during
/// unwinding then aborts with "should not have been woken while in Waiting status". The engine's
/// guard must lock the shard during unwinding, so shuttle itself breaks there. The real-panic
/// version runs on std threads in `tests/stress.rs` (`panicking_compute_lets_a_waiter_compute`).
#[test]
fn failing_compute_lets_another_thread_compute() {
    explore(|| {
        let cache = Arc::new(Cache::builder(4).shards(1).build().unwrap());
        let computed = Arc::new(AtomicUsize::new(0));
        let armed = Arc::new(AtomicBool::new(true));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let cache = Arc::clone(&cache);
                let computed = Arc::clone(&computed);
                let armed = Arc::clone(&armed);
                thread::spawn(move || {
                    cache
                        .try_get_or_insert_with(key(7), || {
                            computed.fetch_add(1, Ordering::SeqCst);
                            thread::yield_now(); // stay in flight while others arrive
                            if armed.swap(false, Ordering::SeqCst) {
                                return Err("the first computation fails");
                            }
                            Ok(value(7, 5))
                        })
                        .ok()
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let values: Vec<_> = results.iter().flatten().collect();
        assert_eq!(values.len(), 2, "exactly one thread sees the failure");
        assert!(values.iter().all(|v| **v == value(7, 5)), "{values:?}");
        assert_eq!(computed.load(Ordering::SeqCst), 2);
        // No pending mark is left behind: the key is a plain hit now.
        let v = cache.get_or_insert_with(key(7), || unreachable!("already stored"));
        assert_eq!(v, value(7, 5));
        assert_eq!(cache.stats().inserts, 1);
    });
}

/// An eviction listener that calls back into the cache (`len`, `get`, `contains`, `stats`, `iter`
/// (which locks every shard), `max_entries`) while other threads put, memoize, remove, expire and
/// clear. Shuttle fails the run if any thread re-locks a
/// shard it holds or if all threads block; the notifications must match the counters.
#[test]
fn reentrant_listener_does_not_deadlock() {
    const MAX_BYTES: u64 = 24;
    explore(|| {
        let time = ManualClock::new();
        let heard = Arc::new(Heard::default());
        let this: Arc<OnceLock<Weak<Cache>>> = Arc::new(OnceLock::new());
        let (h, me) = (Arc::clone(&heard), Arc::clone(&this));
        let cache = Arc::new(
            Cache::builder(4)
                .shards(2)
                .max_bytes(MAX_BYTES)
                .clock(Clock::manual(&time))
                .eviction_listener(move |k, v, cause| {
                    h.count(k, v, cause);
                    if let Some(cache) = me.get().and_then(Weak::upgrade) {
                        let _ = cache.len();
                        if let Some(again) = cache.get(k) {
                            check_value(k, &again);
                        }
                        let _ = cache.contains(key(0));
                        let _ = cache.stats();
                        for e in cache.iter() {
                            check_value(&e.key, &e.value);
                        }
                        let _ = cache.max_entries();
                    }
                })
                .build()
                .unwrap(),
        );
        this.set(Arc::downgrade(&cache)).unwrap();
        let handles: Vec<_> = (0..3u8)
            .map(|t| {
                let cache = Arc::clone(&cache);
                let time = time.clone();
                thread::spawn(move || {
                    for i in 0..4u8 {
                        let id = (t * 2 + i) % 6;
                        match (t, i) {
                            (2, 1) => {
                                cache.remove(key(id));
                            }
                            (2, 2) => {
                                time.advance(Duration::from_secs(1));
                                cache.expire();
                            }
                            (2, 3) => cache.clear(),
                            (0, 3) => {
                                let v = cache.get_or_insert_with(key(id), || value(id, 3));
                                check_value(&key(id), &v);
                            }
                            (1, _) => cache
                                .put_with_ttl(key(id), value(id, 4), Duration::from_secs(1))
                                .unwrap(),
                            _ => cache.put(key(id), value(id, 2 + usize::from(i))).unwrap(),
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_quiescent(&cache, MAX_BYTES);
        heard.assert_matches(&cache.stats());
    });
}

/// `clear` and `resize` (shrinking then growing) run while two threads put: afterwards the cache
/// respects its final bounds, and counters and notifications agree.
#[test]
fn clear_and_resize_concurrent_with_puts() {
    const MAX_BYTES: u64 = 40;
    explore(|| {
        let heard = Arc::new(Heard::default());
        let h = Arc::clone(&heard);
        let cache = Arc::new(
            Cache::builder(8)
                .shards(2)
                .max_bytes(MAX_BYTES)
                .eviction_listener(move |k, v, cause| h.count(k, v, cause))
                .build()
                .unwrap(),
        );
        let mut handles: Vec<_> = (0..2u8)
            .map(|t| {
                let cache = Arc::clone(&cache);
                thread::spawn(move || {
                    let mut rng = thread_rng();
                    for _ in 0..5 {
                        let id = rng.gen_range(0..10u8);
                        let v = value(id, rng.gen_range(1..=8));
                        if t == 0 {
                            cache.put(key(id), v).unwrap();
                        } else {
                            let other = (id + 3) % 10;
                            cache
                                .put_many(&[(key(id), v), (key(other), value(other, 2))])
                                .unwrap();
                        }
                    }
                })
            })
            .collect();
        let c = Arc::clone(&cache);
        handles.push(thread::spawn(move || {
            c.resize(3).unwrap();
            c.clear();
            c.resize(5).unwrap();
        }));
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(cache.max_entries(), 5);
        assert_quiescent(&cache, MAX_BYTES);
        heard.assert_matches(&cache.stats());
    });
}

/// When threads race `get_or_insert_with` on one key, at most one computation of that key is in
/// flight at any moment, even if the key is removed in between (the removal only makes a second,
/// later computation legitimate, never a concurrent one).
///
/// FAILS against the current engine (an engine bug, kept failing on purpose): on success,
/// `try_get_or_insert_with` removes its pending mark under the shard lock, releases the lock, and
/// only then drops its `PendingGuard`, whose `drop` removes *whatever* pending mark the key has
/// now. If in that window the key is removed (or evicted, or expires) and another thread C misses
/// and registers its own pending slot, the guard deletes C's mark while C is still computing; a
/// fourth caller D then finds neither a value nor a pending mark and computes concurrently with C.
/// The guard should only remove the mark if it is still its own slot (`Arc::ptr_eq`), or be
/// disarmed once the success path has removed it.
#[test]
fn get_or_insert_with_never_overlaps_computations_of_one_key() {
    explore(|| {
        let cache = Arc::new(Cache::builder(4).shards(1).build().unwrap());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let overlapped = Arc::new(AtomicBool::new(false));
        let mut handles: Vec<_> = (0..3)
            .map(|_| {
                let cache = Arc::clone(&cache);
                let in_flight = Arc::clone(&in_flight);
                let overlapped = Arc::clone(&overlapped);
                thread::spawn(move || {
                    for _ in 0..2 {
                        let v = cache.get_or_insert_with(key(3), || {
                            if in_flight.fetch_add(1, Ordering::SeqCst) != 0 {
                                overlapped.store(true, Ordering::SeqCst);
                            }
                            thread::yield_now();
                            thread::yield_now();
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            value(3, 6)
                        });
                        assert_eq!(v, value(3, 6));
                    }
                })
            })
            .collect();
        let c = Arc::clone(&cache);
        handles.push(thread::spawn(move || {
            for _ in 0..2 {
                c.remove(key(3));
                thread::yield_now();
            }
        }));
        for handle in handles {
            handle.join().unwrap();
        }
        assert!(
            !overlapped.load(Ordering::SeqCst),
            "two computations of one key were in flight at once"
        );
    });
}
