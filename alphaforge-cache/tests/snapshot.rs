//! Snapshots: round trips (order, TTLs, weights, bounds), every kind of bad input with the cache
//! left unchanged, and faults (a full disk, a process killed during a save).
//!
//! Some tests re-run this test binary as a child process (`run_child`): under `setpriv` as an
//! unprivileged user (permissions cannot be tested as root), under `unshare` with a tiny tmpfs
//! (a full disk), or to be killed with SIGKILL in the middle of saves.

use alphaforge_cache::snapshot::{self, FORMAT_MAJOR};
use alphaforge_cache::{
    Cache, CacheEntry, Clock, LoadOptions, ManualClock, PutOptions, RemovalCause, SaveOptions,
    SnapshotError, SnapshotErrorKind, Stats, ValueEncoding,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ----- helpers --------------------------------------------------------------------------------

/// A fresh, empty directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("afc-snapshot-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names of the files in the directory, sorted.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type Log = Arc<Mutex<Vec<(Vec<u8>, RemovalCause)>>>;

/// A cache on a manual clock at `start`, with a listener logging removals.
fn cache(
    max: usize,
    shards: usize,
    max_bytes: Option<u64>,
    start: u64,
) -> (Cache, ManualClock, Log) {
    let time = ManualClock::new();
    time.set(Duration::from_nanos(start));
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let mut builder = Cache::builder(max)
        .shards(shards)
        .clock(Clock::manual(&time))
        .eviction_listener(move |k, _, cause| sink.lock().unwrap().push((k.to_vec(), cause)));
    if let Some(max_bytes) = max_bytes {
        builder = builder.max_bytes(max_bytes);
    }
    (builder.build().unwrap(), time, log)
}

fn put(cache: &Cache, key: &[u8], value: &[u8], ttl: Option<u64>, weight: Option<u32>) {
    let options = PutOptions {
        ttl: ttl.map(Duration::from_nanos),
        weight,
    };
    cache.put_with(key, value, options).unwrap();
}

/// A small cache with every kind of entry: no TTL, TTLs, an explicit weight, empty key and
/// value, bytes that are not text; one expired entry (never saved); recency changed by a get.
fn small_cache() -> (Cache, ManualClock) {
    let (cache, time, _) = cache(16, 1, Some(4096), 1_000_000_000_000);
    put(&cache, b"alpha", b"1", None, None);
    put(&cache, b"", b"empty key", Some(5_000_000_000), None);
    put(&cache, b"expired", b"x", Some(1_000), None);
    put(&cache, b"gamma", b"weighted", None, Some(100));
    time.advance(Duration::from_nanos(1_000));
    put(&cache, b"beta", b"", Some(1), None);
    let binary_value = b"\x89AFC\r\n\x1a\n";
    put(&cache, b"\x00\xff\n", binary_value, Some(1 << 40), None);
    assert!(cache.get(b"alpha").is_some());
    (cache, time)
}

/// Everything a load could change: the entries (with TTLs, in order) and the statistics.
fn fingerprint(cache: &Cache) -> (Vec<CacheEntry>, Stats, u64) {
    (cache.iter().collect(), cache.stats(), cache.weight())
}

fn bytes_of(cache: &Cache) -> Vec<u8> {
    let mut out = Vec::new();
    cache.save_to(&mut out, SaveOptions::default()).unwrap();
    out
}

fn keys(cache: &Cache) -> Vec<Vec<u8>> {
    cache.iter().map(|e| e.key).collect()
}

/// Re-runs this test binary, running only `test` (with `--ignored`: the child halves of these
/// tests are `#[ignore]`d so that a plain `cargo test` skips them), with `env` set, optionally
/// under a wrapper command. Returns the exit status and the output.
fn run_child(
    wrapper: &[&str],
    test: &str,
    env: &[(&str, &str)],
) -> std::io::Result<std::process::Output> {
    let exe = std::env::current_exe().unwrap();
    let mut args: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
    args.push(exe.to_string_lossy().into_owned());
    args.extend(
        [
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let mut command = Command::new(&args[0]);
    command.args(&args[1..]);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A small xorshift generator (tests need no cryptographic randomness).
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        eprintln!("rng seed {seed}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ----- round trips ----------------------------------------------------------------------------

#[test]
fn round_trip_restores_entries_order_ttls_and_weights() {
    let dir = TempDir::new("round-trip");
    let path = dir.path("small.afcs");
    let (source, _) = small_cache();
    let info = source.save(&path).unwrap();
    assert_eq!(info.entries, 5);
    assert_eq!(info.file_bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(
        (info.format_major, info.value_encoding),
        (1, ValueEncoding::BYTES)
    );
    assert_eq!(dir.files(), ["small.afcs"], "no temporary file is left");

    // Loaded at another time on another clock: the remaining TTLs are what they were.
    let (target, time, _) = cache(16, 1, Some(4096), 7);
    let loaded = target.load(&path).unwrap();
    assert_eq!((loaded.entries, loaded.entries_kept), (5, 5));
    assert_eq!(
        target.iter().collect::<Vec<_>>(),
        source.iter().collect::<Vec<_>>()
    );
    assert_eq!(target.weight(), source.weight());
    assert_eq!(target.stats().inserts, 5);
    // Saved again at the same remaining times: the same bytes.
    assert_eq!(bytes_of(&target), std::fs::read(&path).unwrap());
    // Deadlines are load time + remaining TTL.
    time.advance(Duration::from_nanos(1));
    assert!(!target.contains(b"beta"));
    assert!(target.contains(b""));
    assert_eq!(snapshot::verify(&path).unwrap(), info);
}

#[test]
fn expired_entries_are_not_saved() {
    let (source, time) = small_cache();
    let bytes = bytes_of(&source);
    let (target, _, _) = cache(16, 1, None, 0);
    target
        .load_from(&bytes[..], LoadOptions::default())
        .unwrap();
    assert!(!target.contains(b"expired"));
    // Saving never reclaims: the expired entry is still stored (and counted when reclaimed).
    assert_eq!(source.expire(), 1);
    // Later, the entries whose TTL ran out are left out too.
    time.advance(Duration::from_secs(3600));
    let (later, _, _) = cache(16, 1, None, 0);
    let info = later
        .load_from(&bytes_of(&source)[..], LoadOptions::default())
        .unwrap();
    assert_eq!(info.entries, 2);
    assert_eq!(keys(&later), [b"alpha".to_vec(), b"gamma".to_vec()]);
}

#[test]
fn empty_cache_round_trips() {
    let (source, _, _) = cache(4, 1, None, 0);
    let bytes = bytes_of(&source);
    assert_eq!(bytes.len(), 64 + 4);
    let (target, _, _) = cache(4, 1, None, 0);
    put(&target, b"old", b"value", None, None);
    let info = target
        .load_from(&bytes[..], LoadOptions::default())
        .unwrap();
    assert_eq!((info.entries, info.entries_kept), (0, 0));
    assert!(target.is_empty());
}

#[test]
fn several_shards_round_trip_in_iteration_order() {
    let source = Cache::builder(10_000).shards(8).build().unwrap();
    for i in 0..5_000u32 {
        source.put(i.to_le_bytes(), (i * 7).to_le_bytes()).unwrap();
    }
    for i in (0..5_000u32).step_by(3) {
        source.get(i.to_le_bytes());
    }
    let bytes = bytes_of(&source);
    let target = Cache::builder(10_000).shards(8).build().unwrap();
    let info = target
        .load_from(&bytes[..], LoadOptions::default())
        .unwrap();
    assert_eq!(info.entries_kept, 5_000);
    let mut a: Vec<_> = source.iter().collect();
    let mut b: Vec<_> = target.iter().collect();
    a.sort_by(|x, y| x.key.cmp(&y.key));
    b.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(a, b);
    // Shards share no recency order: the file merges them by relative rank, so a one-shard
    // cache with room for an eighth keeps about the most recent eighth of every shard (shard
    // after shard, it would keep one shard's entries, old and new).
    let source = Cache::builder(10_000).shards(8).build().unwrap();
    for i in 0..8_000u32 {
        source.put(i.to_be_bytes(), b"v").unwrap();
    }
    let one = Cache::builder(1_000).shards(1).build().unwrap();
    one.load_from(&bytes_of(&source)[..], LoadOptions::default())
        .unwrap();
    let ids: Vec<u32> = one
        .iter()
        .map(|e| u32::from_be_bytes(e.key.try_into().unwrap()))
        .collect();
    assert_eq!(ids.len(), 1_000);
    let recent = ids.iter().filter(|&&id| id >= 6_500).count();
    assert!(
        recent >= 950,
        "only {recent} of the kept entries are recent: {ids:?}"
    );
    assert!(ids.iter().all(|&id| id >= 5_000), "{ids:?}");
}

#[test]
fn smaller_bounds_keep_the_most_recent_entries_that_fit() {
    let (source, _, _) = cache(100, 1, None, 0);
    for i in 0..100u8 {
        put(&source, &[i], &[i; 9], None, None); // weight 10 each
    }
    let bytes = bytes_of(&source);
    let newest: Vec<Vec<u8>> = (90..100u8).rev().map(|i| vec![i]).collect();

    let (by_count, _, log) = cache(10, 1, None, 0);
    let info = by_count
        .load_from(&bytes[..], LoadOptions::default())
        .unwrap();
    assert_eq!((info.entries, info.entries_kept), (100, 10));
    assert_eq!(keys(&by_count), newest);
    assert!(
        log.lock().unwrap().is_empty(),
        "entries that did not fit are not evictions"
    );
    assert_eq!(by_count.stats().evictions, 0);

    let (by_bytes, _, _) = cache(100, 1, Some(105), 0);
    by_bytes
        .load_from(&bytes[..], LoadOptions::default())
        .unwrap();
    assert_eq!(keys(&by_bytes), newest);

    // An entry heavier than the bound on its own is skipped; older ones that fit stay.
    let (source, _, _) = cache(10, 1, None, 0);
    put(&source, b"a", b"1", None, None);
    put(&source, b"b", b"2", None, None);
    put(&source, b"heavy", b"x", None, Some(1_000));
    let (target, _, _) = cache(10, 1, Some(100), 0);
    let info = target
        .load_from(&bytes_of(&source)[..], LoadOptions::default())
        .unwrap();
    assert_eq!((info.entries, info.entries_kept), (3, 2));
    assert_eq!(keys(&target), [b"b".to_vec(), b"a".to_vec()]);

    // Several shards: the entry bound per shard and the byte bound overall hold.
    let big = Cache::builder(100_000).shards(4).build().unwrap();
    for i in 0..20_000u32 {
        big.put(i.to_le_bytes(), [0u8; 16]).unwrap();
    }
    let small = Cache::builder(1_000)
        .shards(4)
        .max_bytes(10_000)
        .build()
        .unwrap();
    let info = small
        .load_from(&bytes_of(&big)[..], LoadOptions::default())
        .unwrap();
    assert!(small.len() <= 500 && small.weight() <= 10_000);
    assert_eq!(info.entries_kept as usize, small.len());
}

#[test]
fn load_replaces_the_previous_entries_as_a_clear_does() {
    let (source, _) = small_cache();
    let bytes = bytes_of(&source);
    let (target, _, log) = cache(16, 1, None, 0);
    put(&target, b"old", b"1", None, None);
    put(&target, b"alpha", b"stale", None, None);
    target
        .load_from(&bytes[..], LoadOptions::default())
        .unwrap();
    assert_eq!(target.get(b"alpha").unwrap(), b"1");
    assert!(!target.contains(b"old"));
    let heard = log.lock().unwrap().clone();
    assert_eq!(
        heard,
        [
            (b"alpha".to_vec(), RemovalCause::Cleared),
            (b"old".to_vec(), RemovalCause::Cleared)
        ]
    );
    let stats = target.stats();
    assert_eq!(
        (stats.inserts, stats.removals, stats.entries),
        (2 + 5, 2, 5)
    );
}

#[test]
fn value_encoding_is_recorded_and_checked() {
    let (source, _) = small_cache();
    let mut bytes = Vec::new();
    let options = SaveOptions {
        value_encoding: ValueEncoding::PICKLE,
    };
    source.save_to(&mut bytes, options).unwrap();
    assert_eq!(bytes[20], 1);
    let (target, _, _) = cache(16, 1, None, 0);
    put(&target, b"keep", b"me", None, None);
    let before = fingerprint(&target);
    let expect = |e| LoadOptions {
        expect_encoding: Some(e),
    };
    let err = target
        .load_from(&bytes[..], expect(ValueEncoding::BYTES))
        .unwrap_err();
    assert_eq!(err.kind(), SnapshotErrorKind::EncodingMismatch);
    assert!(
        err.to_string().contains("encoded as pickle, not bytes"),
        "{err}"
    );
    assert_eq!(fingerprint(&target), before);
    let info = target
        .load_from(&bytes[..], expect(ValueEncoding::PICKLE))
        .unwrap();
    assert_eq!(info.value_encoding, ValueEncoding::PICKLE);
    assert_eq!(ValueEncoding(9).to_string(), "unknown encoding 9");
}

#[test]
fn a_ttl_loaded_into_a_cache_without_ttls_switches_its_clock_on() {
    // A monotonic clock that no operation has read yet (no TTL configured or used).
    let source = Cache::new(10).unwrap();
    source
        .put_with_ttl(b"k", b"v", Duration::from_millis(300))
        .unwrap();
    let bytes = bytes_of(&source);
    let target = Cache::new(10).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    target
        .load_from(&bytes[..], LoadOptions::default())
        .unwrap();
    let left = target.remaining_ttl(b"k").unwrap().unwrap();
    assert!(
        left <= Duration::from_millis(300) && left > Duration::ZERO,
        "{left:?}"
    );
    std::thread::sleep(Duration::from_millis(310));
    assert!(!target.contains(b"k"));
}

#[test]
fn save_is_consistent_while_other_threads_write() {
    let cache = Arc::new(Cache::builder(1_000).shards(4).build().unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..2u32)
        .map(|t| {
            let (cache, stop) = (Arc::clone(&cache), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    cache
                        .put((i % 3_000).to_le_bytes(), t.to_le_bytes())
                        .unwrap();
                    i = i.wrapping_add(1);
                }
            })
        })
        .collect();
    for _ in 0..20 {
        let bytes = bytes_of(&cache);
        let target = Cache::builder(1_000).shards(4).build().unwrap();
        let info = target
            .load_from(&bytes[..], LoadOptions::default())
            .unwrap();
        assert!(info.entries <= 1_000);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
}

// ----- bad input: a clear error, and the cache unchanged ---------------------------------------

/// A target cache with content, and a check that a failed load left it exactly so.
struct Target {
    cache: Cache,
    before: (Vec<CacheEntry>, Stats, u64),
}

impl Target {
    fn new() -> Target {
        let (cache, _, _) = cache(16, 1, None, 5);
        put(&cache, b"keep", b"me", Some(50), None);
        put(&cache, b"and", b"me", None, Some(3));
        let before = fingerprint(&cache);
        Target { cache, before }
    }

    fn refuses(&self, bytes: &[u8]) -> alphaforge_cache::SnapshotError {
        let err = match self.cache.load_from(bytes, LoadOptions::default()) {
            Ok(info) => panic!("a bad snapshot was loaded: {info:?}"),
            Err(err) => err,
        };
        assert_eq!(
            fingerprint(&self.cache),
            self.before,
            "the cache changed: {err}"
        );
        err
    }

    fn refuses_file(&self, path: &Path) -> alphaforge_cache::SnapshotError {
        let err = match self.cache.load(path) {
            Ok(info) => panic!("a bad snapshot was loaded: {info:?}"),
            Err(err) => err,
        };
        assert_eq!(
            fingerprint(&self.cache),
            self.before,
            "the cache changed: {err}"
        );
        assert_eq!(err.path(), Some(path));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        err
    }
}

/// Rewrites both checksums of a snapshot after a test changed its bytes on purpose.
fn reseal(bytes: &mut [u8]) {
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let crc = crc32(&bytes[..header_len - 4]);
    bytes[header_len - 4..header_len].copy_from_slice(&crc.to_le_bytes());
    let end = bytes.len() - 4;
    let crc = crc32(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
}

/// CRC-32 (IEEE), bit by bit: the test's own, independent of the library's.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn the_checksums_are_crc32() {
    let (source, _) = small_cache();
    let bytes = bytes_of(&source);
    let end = bytes.len() - 4;
    assert_eq!(crc32(&bytes[..60]).to_le_bytes(), bytes[60..64]);
    assert_eq!(crc32(&bytes[..end]).to_le_bytes(), bytes[end..]);
}

#[test]
fn empty_file_is_refused() {
    let dir = TempDir::new("empty");
    let path = dir.path("empty.afcs");
    std::fs::write(&path, b"").unwrap();
    let target = Target::new();
    let err = target.refuses_file(&path);
    assert_eq!(err.kind(), SnapshotErrorKind::Truncated);
    assert!(err.to_string().contains("the file is empty"), "{err}");
    assert_eq!(target.refuses(b"").kind(), SnapshotErrorKind::Truncated);
}

#[test]
fn truncation_at_every_offset_is_refused() {
    let dir = TempDir::new("truncated");
    let (source, _) = small_cache();
    let bytes = bytes_of(&source);
    let target = Target::new();
    let path = dir.path("cut.afcs");
    for len in 0..bytes.len() {
        let err = target.refuses(&bytes[..len]);
        assert_eq!(
            err.kind(),
            SnapshotErrorKind::Truncated,
            "cut at {len}: {err}"
        );
        std::fs::write(&path, &bytes[..len]).unwrap();
        let err = target.refuses_file(&path);
        assert_eq!(
            err.kind(),
            SnapshotErrorKind::Truncated,
            "cut at {len}: {err}"
        );
        if len >= 16 {
            let message = err.to_string();
            assert!(message.contains(&format!(" {len} bytes")), "{message}");
        }
    }
}

#[test]
fn every_single_bit_flip_is_refused() {
    let (source, _) = small_cache();
    let bytes = bytes_of(&source);
    let target = Target::new();
    let mut kinds = std::collections::BTreeMap::new();
    for bit in 0..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let err = target.refuses(&damaged);
        *kinds.entry(format!("{:?}", err.kind())).or_insert(0) += 1;
        assert!(!err.to_string().is_empty());
    }
    eprintln!("bit flips of a {}-byte snapshot: {kinds:?}", bytes.len());
    assert!(kinds.contains_key("Corrupt") && kinds.contains_key("NotASnapshot"));
}

#[test]
fn foreign_files_are_refused() {
    let target = Target::new();
    for foreign in [
        &b"PK\x03\x04 a zip file, say, long enough to hold a snapshot header and more"[..],
        b"\x89PNG\r\n\x1a\n",
        b"hello",
    ] {
        let err = target.refuses(foreign);
        assert_eq!(err.kind(), SnapshotErrorKind::NotASnapshot, "{err}");
        assert!(err.to_string().contains("not an alphaforge-cache snapshot"));
    }
    // A snapshot's start, too short to be one.
    assert_eq!(
        target.refuses(b"\x89AFC\r\n").kind(),
        SnapshotErrorKind::Truncated
    );
    // A text-mode transfer turned \r\n into \n.
    let (source, _) = small_cache();
    let mangled: Vec<u8> = {
        let bytes = bytes_of(&source);
        let mut out = bytes[..4].to_vec();
        out.extend_from_slice(&bytes[5..]);
        out
    };
    assert_eq!(
        target.refuses(&mangled).kind(),
        SnapshotErrorKind::NotASnapshot
    );
}

#[test]
fn other_major_versions_and_unknown_features_are_refused() {
    let (source, _) = small_cache();
    let bytes = bytes_of(&source);
    let target = Target::new();
    let mut future = bytes.clone();
    future[8..10].copy_from_slice(&(FORMAT_MAJOR + 1).to_le_bytes());
    reseal(&mut future);
    let err = target.refuses(&future);
    assert_eq!(err.kind(), SnapshotErrorKind::Unsupported);
    assert!(
        err.to_string()
            .contains("format version 2.0 is not supported"),
        "{err}"
    );

    let mut flagged = bytes.clone();
    flagged[16] = 0x04;
    flagged[10] = 3; // minor 3
    reseal(&mut flagged);
    let err = target.refuses(&flagged);
    assert_eq!(err.kind(), SnapshotErrorKind::Unsupported);
    assert!(err.to_string().contains("header flags 0x00000004"), "{err}");

    let mut reserved = bytes.clone();
    reserved[45] = 1;
    reseal(&mut reserved);
    assert_eq!(target.refuses(&reserved).kind(), SnapshotErrorKind::Corrupt);

    let mut entry_flag = bytes.clone();
    entry_flag[64] |= 0x80;
    reseal(&mut entry_flag);
    let err = target.refuses(&entry_flag);
    assert!(
        err.to_string()
            .contains("entry 1 of 5: unknown entry flags"),
        "{err}"
    );
}

/// A 1.x file with a longer header: an extension record between byte 60 and the header CRC.
fn with_extension(bytes: &[u8], minor: u16, tag: u16, data: &[u8]) -> Vec<u8> {
    let mut out = bytes[..60].to_vec();
    out[10..12].copy_from_slice(&minor.to_le_bytes());
    let header_len = 64 + 8 + data.len() as u32;
    out[12..16].copy_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&[0; 4]); // header CRC, set by reseal
    out.extend_from_slice(&bytes[64..]);
    reseal(&mut out);
    out
}

#[test]
fn a_newer_minor_version_is_read_and_its_optional_fields_skipped() {
    let (source, _) = small_cache();
    let bytes = bytes_of(&source);
    let newer = with_extension(&bytes, 7, 0x0001, b"saved-by: a future version");
    let (target, _, _) = cache(16, 1, None, 0);
    let info = target
        .load_from(&newer[..], LoadOptions::default())
        .unwrap();
    assert_eq!((info.format_minor, info.entries_kept), (7, 5));
    assert_eq!(
        target.iter().collect::<Vec<_>>(),
        source.iter().collect::<Vec<_>>()
    );

    let critical = with_extension(&bytes, 7, 0x8001, b"");
    let err = Target::new().refuses(&critical);
    assert_eq!(err.kind(), SnapshotErrorKind::Unsupported);
    assert!(
        err.to_string().contains("needs header extension 0x8001"),
        "{err}"
    );
}

#[test]
fn absurd_lengths_are_refused_before_any_allocation() {
    // (The allocation bound itself is checked in tests/snapshot_alloc.rs, alone in its binary.)
    let (source, _) = small_cache();
    let bytes = bytes_of(&source);
    let target = Target::new();
    let dir = TempDir::new("absurd");
    let path = dir.path("absurd.afcs");
    let patch = |at: usize, value: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + value.len()].copy_from_slice(value);
        reseal(&mut b);
        b
    };
    let cases = [
        ("entry count", patch(24, &u64::MAX.to_le_bytes())),
        ("body length", patch(32, &(1u64 << 40).to_le_bytes())),
        ("body length overflow", patch(32, &u64::MAX.to_le_bytes())),
        ("header length", {
            let mut b = bytes.clone();
            b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
            b
        }),
        ("key length", patch(65, &(u32::MAX - 1).to_le_bytes())),
        ("value length", patch(69, &u32::MAX.to_le_bytes())),
    ];
    for (what, bad) in &cases {
        let err = target.refuses(bad);
        eprintln!("{what}: {err}");
        std::fs::write(&path, bad).unwrap();
        let err = target.refuses_file(&path);
        eprintln!("{what} (file): {err}");
    }
}

#[test]
fn missing_paths_and_directories_are_refused() {
    let dir = TempDir::new("paths");
    let target = Target::new();
    let missing = dir.path("missing.afcs");
    let err = target.refuses_file(&missing);
    assert_eq!(err.kind(), SnapshotErrorKind::Io);
    assert_eq!(err.io_error().unwrap().kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains("cannot open"), "{err}");
    let err = target.refuses_file(&dir.0);
    assert_eq!(err.kind(), SnapshotErrorKind::Io);
    assert!(err.to_string().contains("directory"), "{err}");
    assert!(snapshot::verify(&missing).is_err());

    // Saving over a directory, or into a directory that does not exist.
    let (source, _) = small_cache();
    let err = source.save(&dir.0).unwrap_err();
    assert_eq!(err.kind(), SnapshotErrorKind::Io);
    assert!(err.to_string().contains("directory"), "{err}");
    let err = source.save(dir.path("no/such/dir.afcs")).unwrap_err();
    assert!(
        err.to_string().contains("cannot create the temporary file"),
        "{err}"
    );
    assert!(source.save("").is_err());
    assert!(dir.files().is_empty());
}

#[cfg(unix)]
#[test]
fn a_device_is_never_replaced_by_a_snapshot() {
    use std::os::unix::fs::FileTypeExt;
    // The rename of an atomic save would put a regular file in the device's place (as root,
    // /dev/null itself): refused before anything is written.
    let (source, _) = small_cache();
    let err = source.save("/dev/null").unwrap_err();
    assert_eq!(err.kind(), SnapshotErrorKind::Io);
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(meta.file_type().is_char_device());
}

#[test]
fn write_errors_are_reported() {
    // /dev/full: every write fails with ENOSPC.
    let (source, _) = small_cache();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    let Ok(full) = full else {
        eprintln!("skipped: no /dev/full on this system");
        return;
    };
    let err = source.save_to(full, SaveOptions::default()).unwrap_err();
    assert_eq!(err.kind(), SnapshotErrorKind::Io);
    assert_eq!(err.io_error().unwrap().raw_os_error(), Some(28));
    assert!(
        err.to_string().contains("cannot write the snapshot"),
        "{err}"
    );
}

// ----- permissions (needs an unprivileged process) ---------------------------------------------

const PERMISSION_DIR: &str = "AFC_SNAPSHOT_PERMISSION_DIR";

#[test]
fn unreadable_files_and_unwritable_directories_are_refused() {
    let dir = TempDir::new("permissions");
    let (source, _) = small_cache();
    let locked = dir.path("locked.afcs");
    source.save(&locked).unwrap();
    let readonly_dir = dir.path("readonly");
    std::fs::create_dir(&readonly_dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(&readonly_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let dir_str = dir.0.to_string_lossy().into_owned();
    if !is_root() {
        permission_checks(&dir.0);
    } else {
        // Root reads and writes anything: run the checks as user `nobody` through setpriv.
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        let wrapper = [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ];
        match run_child(&wrapper, "permission_child", &[(PERMISSION_DIR, &dir_str)]) {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
            }
            Ok(out) => panic!(
                "the unprivileged child failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            // setpriv is part of util-linux, on every Linux: a test that could not run must
            // not pass.
            Err(e) => panic!("running as root and setpriv cannot run ({e}): cannot drop root"),
        }
    }
    std::fs::set_permissions(&readonly_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn permission_checks(dir: &Path) {
    let target = Target::new();
    let err = target.refuses_file(&dir.join("locked.afcs"));
    assert_eq!(
        err.io_error().map(std::io::Error::kind),
        Some(std::io::ErrorKind::PermissionDenied),
        "{err}"
    );
    assert!(err.to_string().contains("ermission denied"), "{err}");
    let err = target
        .cache
        .save(dir.join("readonly").join("new.afcs"))
        .unwrap_err();
    assert_eq!(err.kind(), SnapshotErrorKind::Io);
    assert!(err.to_string().contains("ermission denied"), "{err}");
}

#[test]
#[ignore = "the child half of unreadable_files_and_unwritable_directories_are_refused"]
fn permission_child() {
    let dir = std::env::var(PERMISSION_DIR).expect("run by its parent test");
    permission_checks(Path::new(&dir));
}

// ----- faults: a full disk, a process killed during saves ---------------------------------------

const FULL_DISK_DIR: &str = "AFC_SNAPSHOT_FULL_DISK_DIR";

#[test]
fn a_full_disk_fails_cleanly_and_keeps_the_previous_snapshot() {
    // A 256 KiB tmpfs, mounted in a private mount namespace (as root, or as a user through a
    // user namespace), so no real disk is filled and nothing is left mounted.
    let dir = TempDir::new("full-disk");
    let dir_str = dir.0.to_string_lossy().into_owned();
    let script =
        format!("mount -t tmpfs -o size=256k afc-snapshot-test '{dir_str}' && exec \"$0\" \"$@\"");
    let mut wrapper = vec!["unshare", "--mount", "--propagation", "private"];
    if !is_root() {
        wrapper.push("--map-root-user");
    }
    wrapper.extend(["sh", "-c", &script]);
    match run_child(&wrapper, "full_disk_child", &[(FULL_DISK_DIR, &dir_str)]) {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
        }
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("unshare:") || stderr.contains("mount:") {
                eprintln!("skipped: cannot mount a tmpfs here: {stderr}");
            } else {
                panic!(
                    "full_disk_child failed:\n{}\n{stderr}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
        Err(e) => eprintln!("skipped: unshare is unavailable ({e})"),
    }
}

#[test]
#[ignore = "the child half of a_full_disk_fails_cleanly_and_keeps_the_previous_snapshot"]
fn full_disk_child() {
    let dir = PathBuf::from(std::env::var(FULL_DISK_DIR).expect("run by its parent test"));
    // 3 MB: more than the file system holds.
    let err = a_failed_save_keeps_the_previous_snapshot(&dir, 1, 30_000, 28);
    println!("full disk: {err}");
}

/// Saves a small cache of `shards` shards to `dir/cache.afcs`, then `entries` more entries,
/// which a fault lets not be written: the second save must fail with the OS error `errno`, keep
/// the previous snapshot byte for byte, leave no temporary file and the cache unchanged.
fn a_failed_save_keeps_the_previous_snapshot(
    dir: &Path,
    shards: usize,
    entries: u32,
    errno: i32,
) -> SnapshotError {
    let path = dir.join("cache.afcs");
    let (cache, _, _) = cache(100_000, shards, None, 0);
    for i in 0..100u32 {
        cache.put(i.to_le_bytes(), [1u8; 100]).unwrap();
    }
    let first = cache.save(&path).unwrap();
    let saved = std::fs::read(&path).unwrap();
    for i in 0..entries {
        cache.put(i.to_le_bytes(), [2u8; 100]).unwrap();
    }
    let err = cache.save(&path).unwrap_err();
    assert_eq!(err.kind(), SnapshotErrorKind::Io);
    assert_eq!(err.io_error().unwrap().raw_os_error(), Some(errno), "{err}");
    assert!(
        err.to_string().contains("cannot write the snapshot"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        saved,
        "the previous snapshot changed"
    );
    assert_eq!(snapshot::verify(&path).unwrap(), first);
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["cache.afcs"], "the temporary file was not removed");
    assert_eq!(cache.len(), entries as usize);
    err
}

const FILE_SIZE_LIMIT_DIR: &str = "AFC_SNAPSHOT_FILE_SIZE_LIMIT_DIR";

/// The file size limit of `file_size_limit_child`, in the shell's 512-byte blocks (2 MiB).
const FILE_SIZE_LIMIT_BLOCKS: u32 = 4096;

#[test]
fn a_file_size_limit_fails_saves_cleanly_and_keeps_the_previous_snapshot() {
    // A write past the process's file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) fails
    // with EFBIG, as one past the end of a full disk fails with ENOSPC: a fault every process
    // can have, so this runs everywhere (the tmpfs test above needs a mount namespace), on the
    // real temporary directory (where saves write past the page cache) and with enough entries
    // for a save on three threads.
    let dir = TempDir::new("file-size-limit");
    let dir_str = dir.0.to_string_lossy().into_owned();
    // An ignored signal stays ignored across exec.
    let script =
        format!("trap '' XFSZ && ulimit -f {FILE_SIZE_LIMIT_BLOCKS} && exec \"$0\" \"$@\"");
    let out = run_child(
        &["sh", "-c", &script],
        "file_size_limit_child",
        &[(FILE_SIZE_LIMIT_DIR, &dir_str)],
    )
    .expect("sh runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "file_size_limit_child failed or ran no test:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "the child half of a_file_size_limit_fails_saves_cleanly_and_keeps_the_previous_snapshot"]
fn file_size_limit_child() {
    let dir = PathBuf::from(std::env::var(FILE_SIZE_LIMIT_DIR).expect("run by its parent test"));
    let limit = u64::from(FILE_SIZE_LIMIT_BLOCKS) * 512;
    // 3.3 MB and 6.5 MB: past the limit (the second on three threads).
    for (shards, entries) in [(1, 30_000u32), (16, 60_000)] {
        let err = a_failed_save_keeps_the_previous_snapshot(&dir, shards, entries, 27);
        println!("{shards} shards, {entries} entries past a {limit}-byte limit: {err}");
        // Once the entries fit, the cache saves again.
        let (cache, _, _) = cache(100, shards, None, 0);
        cache.put(b"after", b"the fault").unwrap();
        cache.save(dir.join("cache.afcs")).unwrap();
        std::fs::remove_file(dir.join("cache.afcs")).unwrap();
    }
}

const SYNC_TRACE_DIR: &str = "AFC_SNAPSHOT_SYNC_TRACE_DIR";

#[test]
fn a_save_flushes_the_file_before_the_rename_and_the_directory_after_it() {
    // What `save` promises a crash cannot undo: its file's bytes are on the disk before the
    // rename makes it the snapshot, and the rename is on the disk before `save` returns. The
    // system calls of a child process that saves, small and large (three threads), as strace
    // sees them. CI installs strace (`AFC_REQUIRE_STRACE=1`); elsewhere it may be missing.
    let dir = TempDir::new("sync-trace");
    let dir_str = dir.0.to_string_lossy().into_owned();
    let trace = dir.path("trace.txt");
    let trace_str = trace.to_string_lossy().into_owned();
    let wrapper = [
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=openat,fsync,fdatasync,rename,renameat,renameat2,close",
        "-o",
        &trace_str,
    ];
    let out = match run_child(&wrapper, "sync_trace_child", &[(SYNC_TRACE_DIR, &dir_str)]) {
        Ok(out) => out,
        Err(e) if std::env::var_os("AFC_REQUIRE_STRACE").is_none() => {
            eprintln!("skipped: strace is unavailable ({e})");
            return;
        }
        Err(e) => panic!("AFC_REQUIRE_STRACE is set but strace cannot run: {e}"),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "sync_trace_child failed or ran no test:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    for name in ["small.afcs", "large.afcs"] {
        check_sync_order(&trace, &dir_str, name);
    }
}

/// Checks, in an strace log, that the save to `dir/name` fsyncs its temporary file, renames it
/// to `name`, then fsyncs the directory: in that order, on the descriptors `openat` returned.
fn check_sync_order(trace: &str, dir: &str, name: &str) {
    // Lines look like `1234  openat(AT_FDCWD, "/tmp/x/.name.1234.0.tmp", O_...) = 5`.
    let calls: Vec<&str> = trace
        .lines()
        .map(|line| {
            line.split_once(' ')
                .map_or(line, |(_, call)| call.trim_start())
        })
        .collect();
    let returned_fd =
        |call: &str| -> Option<u32> { call.rsplit_once(" = ")?.1.trim().parse().ok() };
    // The calls from `from` on while the descriptor `fd` it opened stays open.
    let while_open = |from: usize, fd: u32| {
        let closed = calls[from..]
            .iter()
            .position(|c| c.starts_with(&format!("close({fd})")))
            .map_or(calls.len(), |i| from + i);
        &calls[from..closed]
    };
    let synced = |calls: &[&str], fd: u32| {
        calls.iter().any(|c| {
            (c.starts_with(&format!("fsync({fd})")) || c.starts_with(&format!("fdatasync({fd})")))
                && c.ends_with("= 0")
        })
    };
    let temp_open = calls
        .iter()
        .position(|c| {
            c.starts_with("openat(") && c.contains(&format!("/.{name}.")) && c.contains(".tmp\"")
        })
        .unwrap_or_else(|| panic!("no temporary file opened for {name}:\n{trace}"));
    let temp_fd = returned_fd(calls[temp_open]).expect("the temporary file opened");
    let rename = calls
        .iter()
        .position(|c| c.starts_with("rename") && c.contains(&format!("/{name}\"")))
        .unwrap_or_else(|| panic!("no rename to {name}:\n{trace}"));
    assert!(
        temp_open < rename,
        "{name}: renamed before it was written:\n{trace}"
    );
    let temp_calls = while_open(temp_open, temp_fd);
    assert!(
        temp_open + temp_calls.len() <= rename && synced(temp_calls, temp_fd),
        "{name}: the temporary file (fd {temp_fd}) was not flushed before the rename:\n{trace}"
    );
    let dir_open = calls[rename..]
        .iter()
        .position(|c| c.starts_with("openat(") && c.contains(&format!("\"{dir}\"")))
        .map(|i| rename + i)
        .unwrap_or_else(|| {
            panic!("{name}: the directory was not opened after the rename:\n{trace}")
        });
    let dir_fd = returned_fd(calls[dir_open]).expect("the directory opened");
    assert!(
        synced(while_open(dir_open, dir_fd), dir_fd),
        "{name}: the directory (fd {dir_fd}) was not flushed after the rename:\n{trace}"
    );
}

#[test]
#[ignore = "the child half of a_save_flushes_the_file_before_the_rename_and_the_directory_after_it"]
fn sync_trace_child() {
    let dir = PathBuf::from(std::env::var(SYNC_TRACE_DIR).expect("run by its parent test"));
    for (name, entries) in [("small.afcs", 100u32), ("large.afcs", 40_000)] {
        let (cache, _, _) = cache(100_000, 4, None, 0);
        for i in 0..entries {
            cache.put(i.to_le_bytes(), [3u8; 100]).unwrap();
        }
        cache.save(dir.join(name)).unwrap();
    }
}

const KILL_PATH: &str = "AFC_SNAPSHOT_KILL_PATH";

/// Starts a `kill_child` process saving to `path` and returns it with its stdout, read up to its
/// `ready` line (the child's test harness has started and its cache is built).
fn spawn_kill_child(
    path: &str,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_child", "--ignored", "--nocapture"])
        .env(KILL_PATH, path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line == "ready" => break,
            Some(Ok(_)) => continue,
            other => panic!("kill_child ended before it was ready: {other:?}"),
        }
    }
    (child, lines)
}

#[test]
fn a_process_killed_during_saves_never_leaves_a_partial_snapshot() {
    let dir = TempDir::new("kill");
    let path = dir.path("cache.afcs");
    let path_str = path.to_string_lossy().into_owned();
    let mut rng = Rng::seeded();

    // Calibrate: how long one generation (puts, then a save) takes on this machine now, so the
    // kills below land at random points of the first few generations whatever its speed.
    let (mut child, mut lines) = spawn_kill_child(&path_str);
    let mut generation_us = 0u64;
    for _ in 0..3 {
        let line = lines.next().expect("kill_child stopped").unwrap();
        let us: u64 = line
            .strip_prefix("saved ")
            .and_then(|us| us.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line from kill_child: {line}"));
        generation_us = generation_us.max(us);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    snapshot::verify(&path).expect("a finished save is a valid snapshot");
    std::fs::remove_file(&path).unwrap();

    let (mut kills, mut mid_save) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (kills < 60 || mid_save == 0) && Instant::now() < deadline {
        let (mut child, lines) = spawn_kill_child(&path_str);
        std::thread::sleep(Duration::from_micros(rng.below(3 * generation_us + 1)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        drop(lines);
        kills += 1;
        // The target is absent (no save finished yet) or a whole, valid snapshot.
        if path.exists() {
            let info = snapshot::verify(&path)
                .unwrap_or_else(|e| panic!("kill {kills} left a bad snapshot: {e}"));
            assert!(info.entries >= 1);
        }
        for name in dir.files() {
            if name.ends_with(".tmp") {
                mid_save += 1;
                std::fs::remove_file(dir.path(&name)).unwrap();
            }
        }
    }
    eprintln!(
        "{kills} kills at random points of generations of ~{generation_us} us, \
         {mid_save} of them during a save (a temporary file was left)"
    );
    assert!(kills >= 30, "only {kills} kills in the time allowed");
    assert!(mid_save > 0, "no kill landed during a save");
    assert!(path.exists(), "no save ever completed");
}

#[test]
#[ignore = "the child half of a_process_killed_during_saves_never_leaves_a_partial_snapshot"]
fn kill_child() {
    use std::io::Write;
    let path = PathBuf::from(std::env::var(KILL_PATH).expect("run by its parent test"));
    let cache = Cache::builder(50_000).shards(4).build().unwrap();
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for generation in 0u32.. {
        let start = Instant::now();
        // Saves of 20k entries (a writer thread) and of 40k (three threads) in turn.
        let entries = if generation % 2 == 0 {
            20_000u32
        } else {
            40_000
        };
        cache.clear();
        for i in 0..entries {
            cache.put(i.to_le_bytes(), [generation as u8; 100]).unwrap();
        }
        cache.save(&path).unwrap();
        // The parent may have stopped reading: a failed write must not end the saves.
        let _ = writeln!(out, "saved {}", start.elapsed().as_micros());
        let _ = out.flush();
    }
}

#[test]
fn values_larger_than_the_read_buffer_round_trip() {
    let dir = TempDir::new("large");
    let path = dir.path("large.afcs");
    let (source, _, _) = cache(10, 1, None, 0);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    put(&source, b"small", b"1", None, None);
    put(&source, b"big", &big, Some(99), None);
    put(&source, b"after", b"2", None, None);
    source.save(&path).unwrap();
    let (target, _, _) = cache(10, 1, None, 0);
    target.load(&path).unwrap();
    assert_eq!(
        target.iter().collect::<Vec<_>>(),
        source.iter().collect::<Vec<_>>()
    );
    let bytes = std::fs::read(&path).unwrap();
    let (target, _, _) = cache(10, 1, None, 0);
    target
        .load_from(&bytes[..], LoadOptions::default())
        .unwrap();
    assert_eq!(target.peek(b"big").unwrap(), big);
}

/// A reader that hands out at most `step` bytes per call, so that every entry of a snapshot
/// crosses the loader's buffer refills at some offset.
struct Dribble<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl std::io::Read for Dribble<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// Where each entry of a snapshot written by this library (format 1.0) starts.
fn entry_offsets(bytes: &[u8]) -> Vec<usize> {
    let count = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
    let mut at = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut offsets = Vec::new();
    for _ in 0..count {
        offsets.push(at);
        let flags = bytes[at];
        let key_len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        let value_len = u32::from_le_bytes(bytes[at + 5..at + 9].try_into().unwrap()) as usize;
        let optional = if flags & 1 != 0 { 8 } else { 0 } + if flags & 2 != 0 { 4 } else { 0 };
        at += 9 + optional + key_len + value_len;
    }
    assert_eq!(at, bytes.len() - 4);
    offsets
}

#[test]
fn entries_across_read_buffer_boundaries_load_whole_and_their_errors_name_them() {
    let dir = TempDir::new("boundaries");
    let path = dir.path("mixed.afcs");
    let mut rng = Rng::seeded();
    let (source, _, _) = cache(10_000, 1, None, 7);
    // Entries of every size class: tiny, around the loader's blocks and buffers, beyond them.
    let mut total = 0;
    let mut i = 0u32;
    while total < 3 << 20 {
        let value_len = match rng.below(10) {
            0..=5 => rng.below(200),
            6 | 7 => rng.below(5_000),
            8 => 60_000 + rng.below(10_000),
            _ => rng.below(1_200_000),
        } as usize;
        let key = format!("key-{i}-{}", "k".repeat(rng.below(40) as usize));
        let value: Vec<u8> = (0..value_len).map(|b| (b as u32 ^ i) as u8).collect();
        let ttl = (rng.below(3) == 0).then(|| 1 + rng.below(1 << 40));
        let weight = (rng.below(4) == 0).then(|| rng.below(1 << 20) as u32);
        put(&source, key.as_bytes(), &value, ttl, weight);
        total += key.len() + value_len;
        i += 1;
    }
    source.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let expected = fingerprint(&source).0;
    let loaded = |load: &dyn Fn(&Cache)| {
        let (target, _, _) = cache(10_000, 1, None, 7);
        load(&target);
        target.iter().collect::<Vec<_>>()
    };
    assert_eq!(
        loaded(&|c| {
            c.load(&path).unwrap();
        }),
        expected
    );
    let from = |reader: &mut dyn std::io::Read, c: &Cache| {
        c.load_from(reader, LoadOptions::default()).unwrap();
    };
    assert_eq!(loaded(&|c| from(&mut &bytes[..], c)), expected);
    for step in [3, 4_093, 65_537] {
        let read = |c: &Cache| {
            from(
                &mut Dribble {
                    bytes: &bytes,
                    step,
                },
                c,
            )
        };
        assert_eq!(loaded(&read), expected, "reads of at most {step} bytes");
    }
    // A damaged entry anywhere is named, with its offset, whichever way it was read.
    let offsets = entry_offsets(&bytes);
    let target = Target::new();
    for _ in 0..20 {
        let index = rng.below(offsets.len() as u64) as usize;
        let mut damaged = bytes.clone();
        damaged[offsets[index]] |= 0x80; // an unknown entry flag
        reseal(&mut damaged);
        std::fs::write(&path, &damaged).unwrap();
        let from_file = target.refuses_file(&path);
        let from_stream = target.refuses(&damaged);
        let dribbled = match target.cache.load_from(
            Dribble {
                bytes: &damaged,
                step: 1_001,
            },
            LoadOptions::default(),
        ) {
            Ok(_) => panic!("a damaged snapshot was loaded"),
            Err(err) => err,
        };
        let name = format!("entry {} of {}", index + 1, offsets.len());
        for err in [from_file, from_stream, dribbled] {
            assert_eq!(err.kind(), SnapshotErrorKind::Corrupt, "{err}");
            assert_eq!(err.offset(), Some(offsets[index] as u64), "{err}");
            assert!(err.to_string().contains(&name), "{name}: {err}");
        }
    }
}
