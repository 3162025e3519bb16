//! Memory per entry of alphaforge-cache, moka, quick_cache and lru (behind a mutex): each cache,
//! built with capacity 1M, receives 1M distinct entries (16-byte keys, 64-byte values).
//!
//! A counting global allocator measures the bytes the process holds before and after: both the
//! bytes requested and the bytes glibc's `malloc_usable_size` reports for them (requested sizes
//! rounded up to malloc's chunk sizes; malloc's own 8-byte chunk headers are in neither). The
//! resident set size delta comes from `/proc/self/statm`. Each cache is measured in a fresh child
//! process so that one cache's freed memory cannot hide another's.
//!
//! Usage: `memory` (all caches, a Markdown table) or `memory NAME [ENTRIES]`.

use alphaforge_cache_bench::{key, Engine, Lru, Moka, Quick, Subject, KEY_LEN, VALUE, VALUE_LEN};
use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
use std::process::Command;
use std::sync::atomic::{AtomicIsize, Ordering};

extern "C" {
    /// glibc: the usable size of a block returned by malloc (and friends).
    fn malloc_usable_size(ptr: *mut c_void) -> usize;
}

/// Counts the bytes held: requested and usable.
struct Counting;

static REQUESTED: AtomicIsize = AtomicIsize::new(0);
static USABLE: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

fn usable(ptr: *mut u8) -> isize {
    // SAFETY: `ptr` is a live block from the system allocator (glibc malloc or posix_memalign).
    unsafe { malloc_usable_size(ptr.cast()) as isize }
}

// SAFETY: every call is forwarded to `System`; the counters are side bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            REQUESTED.fetch_add(layout.size() as isize, Ordering::Relaxed);
            USABLE.fetch_add(usable(ptr), Ordering::Relaxed);
            BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            REQUESTED.fetch_add(layout.size() as isize, Ordering::Relaxed);
            USABLE.fetch_add(usable(ptr), Ordering::Relaxed);
            BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        USABLE.fetch_sub(usable(ptr), Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        System.dealloc(ptr, layout);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let before = usable(ptr);
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            REQUESTED.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
            USABLE.fetch_add(usable(new) - before, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const NAMES: [&str; 4] = ["alphaforge", "quick_cache", "moka", "lru"];
const PAGE: usize = 4096;

/// Resident set size in bytes (second field of `/proc/self/statm`, in pages).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    pages * PAGE
}

struct Snapshot {
    requested: isize,
    usable: isize,
    blocks: isize,
    rss: usize,
}

fn snapshot() -> Snapshot {
    Snapshot {
        requested: REQUESTED.load(Ordering::Relaxed),
        usable: USABLE.load(Ordering::Relaxed),
        blocks: BLOCKS.load(Ordering::Relaxed),
        rss: rss(),
    }
}

/// Fills `make(entries)` with `entries` distinct entries and prints one table row.
fn measure<S: Subject>(name: &str, entries: usize, make: impl FnOnce(usize) -> S) {
    let before = snapshot();
    let cache = make(entries);
    for i in 0..entries as u64 {
        cache.put(&key(i), &VALUE);
    }
    cache.settle();
    let after = snapshot();
    let stored = cache.len();
    let per = |bytes: f64| bytes / stored as f64;
    let payload = (KEY_LEN + VALUE_LEN) as f64;
    let requested = per((after.requested - before.requested) as f64);
    let usable = per((after.usable - before.usable) as f64);
    let rss = per(after.rss as f64 - before.rss as f64);
    println!(
        "| {name} | {stored} | {requested:.1} | {:.1} | {usable:.1} | {:.1} | {rss:.1} | {:.1} | {:.2} |",
        requested - payload,
        usable - payload,
        rss - payload,
        per((after.blocks - before.blocks) as f64),
    );
    std::hint::black_box(&cache);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let entries: usize = 1_000_000;
    match args.next() {
        Some(name) => {
            let entries = args.next().map_or(entries, |n| n.parse().expect("ENTRIES"));
            match name.as_str() {
                "alphaforge" => measure(&name, entries, Engine::new),
                "quick_cache" => measure(&name, entries, Quick::new),
                "moka" => measure(&name, entries, Moka::new),
                "lru" => measure(&name, entries, Lru::new),
                other => panic!("unknown cache {other}; expected one of {NAMES:?}"),
            }
        }
        None => {
            println!(
                "{entries} entries of {KEY_LEN}-byte keys and {VALUE_LEN}-byte values, capacity {entries}; bytes per stored entry\n"
            );
            println!("| cache | stored | requested | overhead | usable | overhead | RSS | overhead | blocks |");
            println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            let exe = std::env::current_exe().expect("own path");
            for name in NAMES {
                let status = Command::new(&exe)
                    .arg(name)
                    .arg(entries.to_string())
                    .status()
                    .expect("child runs");
                assert!(status.success(), "{name} failed");
            }
        }
    }
}
