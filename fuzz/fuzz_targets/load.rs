//! Fuzzes the snapshot loader with arbitrary bytes. A load must either fail with an error and
//! leave the cache as it was, or succeed with a state that saves and loads back unchanged; it
//! must never panic, hang, or allocate more than the input's length justifies.
//!
//! The input's first byte chooses a mode. Its lowest bit: set, the rest is loaded with both
//! checksums rewritten first (so that mutations get past them and reach the entries, the limits
//! and the bounds); clear, the rest is loaded as it is (the checksums themselves are tested). Its
//! second bit: clear, the rest is loaded from memory (`load_from`, its length unknown); set, it
//! is written to a file and loaded from there (`load`, whose reader sizes its buffer and its
//! staging from the file's length), and `snapshot::verify` must agree with the load.

#![no_main]

use alphaforge_cache::{snapshot, Cache, Clock, LoadOptions, ManualClock, SaveOptions};
use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the bytes the Rust code holds, to catch an allocation made for a length field alone.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Memory a load may use beyond the input: its read buffer (64 KiB for a stream, at most
/// 256 KiB for a file), a block of entries (64 KiB), the staging's tables for at most 64 entries.
const LOAD_ALLOWANCE: usize = 1 << 20;

/// Memory the whole round may use beyond the input: the load's, then a save of the loaded cache
/// (up to 1 MiB of entries, written through 1 MiB buffers) and a load of what it wrote.
const ALLOWANCE: usize = 4 << 20;

/// The file of the file mode, one per fuzzing process.
fn scratch_file() -> &'static std::path::Path {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("afc-fuzz-load-{}.afcs", std::process::id()))
    })
}

/// A one-shard cache (exact order) on a manual clock that never moves (no entry expires between
/// the load and the checks).
fn cache() -> Cache {
    Cache::builder(64)
        .shards(1)
        .max_bytes(1 << 20)
        .clock(Clock::manual(&ManualClock::new()))
        .build()
        .expect("a valid configuration")
}

/// Rewrites the header checksum (where the header length says it is) and the trailer.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() >= 16 {
        let header_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
        if (20..=bytes.len()).contains(&header_len) {
            let crc = crc32fast::hash(&bytes[..header_len - 4]);
            bytes[header_len - 4..header_len].copy_from_slice(&crc.to_le_bytes());
        }
    }
    if bytes.len() >= 4 {
        let end = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let mut resealed;
    let data = if mode & 1 == 1 {
        resealed = rest.to_vec();
        reseal(&mut resealed);
        &resealed[..]
    } else {
        rest
    };
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let target = cache();
    target.put(b"before", b"the load").expect("fits");
    let before: Vec<_> = target.iter().collect();
    let from_file = mode & 2 == 2;
    let loaded = if from_file {
        let path = scratch_file();
        std::fs::write(path, data).expect("writing the scratch file");
        let loaded = target.load(path);
        let verified = snapshot::verify(path);
        match (&loaded, &verified) {
            (Ok(info), Ok(checked)) => assert_eq!(info.entries, checked.entries),
            (Err(_), Err(_)) => {}
            _ => panic!("load and verify disagree: {loaded:?} / {verified:?}"),
        }
        loaded
    } else {
        target.load_from(data, LoadOptions::default())
    };
    let load_used = PEAK.load(Ordering::Relaxed) - base;
    assert!(
        load_used <= 3 * data.len() + LOAD_ALLOWANCE,
        "a load of {} bytes used {load_used} bytes of memory",
        data.len()
    );
    match loaded {
        Err(_) => assert_eq!(
            target.iter().collect::<Vec<_>>(),
            before,
            "a failed load changed the cache"
        ),
        Ok(info) => {
            assert!(info.entries_kept <= info.entries.min(64));
            // What was loaded saves and loads back unchanged.
            let mut saved = Vec::new();
            target
                .save_to(&mut saved, SaveOptions::default())
                .expect("saving to memory");
            let again = cache();
            again
                .load_from(&saved[..], LoadOptions::default())
                .expect("a saved snapshot loads");
            assert_eq!(
                target.iter().collect::<Vec<_>>(),
                again.iter().collect::<Vec<_>>()
            );
        }
    }
    drop(target);
    let used = PEAK.load(Ordering::Relaxed) - base;
    assert!(
        used <= 3 * data.len() + ALLOWANCE,
        "a load of {} bytes used {used} bytes of memory",
        data.len()
    );
});
