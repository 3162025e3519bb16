//! The cache the snapshot tests save and load: entries of every kind.

use crate::{Cache, Clock, ManualClock, PutOptions};
use std::time::Duration;

/// A cache of 4 shards (room for twice `n`) holding `n` entries of every kind: TTLs on a third
/// of them, weights of their own on a quarter (one in 40 heavier than a shared entry's 16 bits
/// hold), values of many lengths and every `large_every`-th one of `large_len` bytes; recency
/// changed by a get of every 7th. Its manual clock stops 3 ns after each put.
pub(super) fn of_every_kind(n: u64, large_every: u64, large_len: usize) -> Cache {
    let time = ManualClock::new();
    time.set(Duration::from_secs(1000));
    let clock = Clock::manual(&time);
    let cache = Cache::builder(2 * n as usize)
        .shards(4)
        .clock(clock)
        .build()
        .unwrap();
    for i in 0..n {
        let len = match i % large_every {
            0 => large_len,
            r => (r % 97) as usize,
        };
        let weight = match i % 40 {
            0 => Some(70_000 + (i % 1000) as u32),
            r if r % 4 == 0 => Some((i % 13) as u32 + len as u32),
            _ => None,
        };
        let options = PutOptions {
            ttl: (i % 3 == 0).then(|| Duration::from_secs(1 + i)),
            weight,
        };
        cache
            .put_with(format!("key-{i}"), vec![i as u8; len], options)
            .unwrap();
        time.advance(Duration::from_nanos(3));
    }
    for i in (0..n).step_by(7) {
        cache.get(format!("key-{i}"));
    }
    cache
}
