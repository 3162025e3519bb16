//! Snapshot save and load of 1M entries (16-byte keys, 64-byte values), each next to the time the
//! machine takes to write (or read) the same number of bytes as one sequential file, measured in
//! the same run, alternately, and reported as medians.
//!
//! - save: `Cache::save` (temporary file, entries streamed under the shard locks, fsync, rename,
//!   directory fsync). Baselines: write the same bytes in 1 MiB writes over the previous plain
//!   file (truncated), fsync; and the same into a new file, fsync, then (untimed) a rename over
//!   the previous one: the page cache holds the old file while the new is written, as in a save.
//! - load: `Cache::load` into a fresh cache of the same configuration (read, both checksums,
//!   every entry checked and inserted). Baselines: read the file in 1 MiB reads into one reused
//!   buffer (pure I/O); `std::fs::read` (I/O plus memory for the bytes, as a load needs memory for
//!   the entries; malloc may give pages it kept from an earlier round); and a read into fresh
//!   anonymous memory (`mmap`, always new pages). The file is in the page cache for all four: a
//!   save writes it past the page cache (`O_DIRECT`), so it is read once, untimed, before the
//!   load, which would otherwise wait for the disk (as the cold load below does).
//!
//! Then the same for reads from the disk rather than the page cache ("cold"): the file's cached
//! pages are dropped with `posix_fadvise(POSIX_FADV_DONTNEED)` (this file only, no root needed)
//! before the load and before each baseline read (into the reused buffer, and into fresh
//! memory).
//!
//! For context, each round also times putting the same 1M entries into an empty cache (what a
//! load does besides reading and checking the file).
//!
//! The summary gives each ratio the floor's verdict (at most 2x) where the baseline is one the
//! floor is held to: a write of the same bytes, or a read that keeps them. The read into a
//! reused buffer keeps no byte and is reported for context (`docs/benchmarks.md`, "Snapshots").
//!
//! Usage: `snapshot [ROUNDS] [DIR]` (default 7 rounds, DIR the system's temp dir). `AFC_SHARDS=N`
//! sets the shard count (default: the engine's). `AFC_SAVE_LOOP=1` only serializes the cache to
//! `io::sink()` 20 times (no file system), for profilers; `AFC_LOAD_LOOP=1` only loads the
//! snapshot (page cache) into a fresh cache 20 times; `AFC_VERIFY_LOOP=1` only checks it
//! (`snapshot::verify`: read, checksums, every entry's lengths, no cache) 20 times.

use alphaforge_cache::Cache;
use alphaforge_cache_bench::{key, VALUE};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ENTRIES: u64 = 1_000_000;

/// A cache for 1M entries: the default shard count, or `AFC_SHARDS`.
fn build() -> Cache {
    // Room for every entry whatever the hash spread over the shards.
    let mut builder = Cache::builder(ENTRIES as usize * 5 / 4);
    if let Ok(shards) = std::env::var("AFC_SHARDS") {
        builder = builder.shards(shards.parse().expect("AFC_SHARDS"));
    }
    builder.build().unwrap()
}

extern "C" {
    /// POSIX: advice about a file's pages (here: drop them from the page cache).
    fn posix_fadvise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
    /// POSIX: maps memory (here: fresh anonymous pages).
    fn mmap(addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32, offset: i64) -> *mut u8;
    /// POSIX: unmaps what `mmap` mapped.
    fn munmap(addr: *mut u8, len: usize) -> i32;
}

/// `PROT_READ | PROT_WRITE` and `MAP_PRIVATE | MAP_ANONYMOUS` on Linux.
const PROT_READ_WRITE: i32 = 0x3;
const MAP_PRIVATE_ANONYMOUS: i32 = 0x22;

/// Reads the whole file into fresh anonymous memory (new pages from the kernel, as a process
/// that has not allocated before gets).
fn read_into_fresh_memory(path: &Path, len: usize) -> Duration {
    let start = Instant::now();
    // SAFETY: an anonymous private mapping of `len` bytes, checked below; nothing else uses it.
    let at = unsafe {
        mmap(
            std::ptr::null_mut(),
            len,
            PROT_READ_WRITE,
            MAP_PRIVATE_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(!at.is_null() && at as isize != -1, "mmap");
    // SAFETY: `at` is a fresh mapping of `len` readable and writable bytes, owned here alone
    // until the `munmap` below.
    let memory = unsafe { std::slice::from_raw_parts_mut(at, len) };
    let mut file = File::open(path).unwrap();
    file.read_exact(memory).unwrap();
    let took = start.elapsed();
    // SAFETY: the mapping made above, no longer referenced (`memory` is not used again).
    assert_eq!(unsafe { munmap(at, len) }, 0, "munmap");
    took
}

/// `POSIX_FADV_DONTNEED` on Linux.
const FADV_DONTNEED: i32 = 4;

/// Drops the (clean, synced) pages of `path` from the page cache, so the next read comes from
/// the disk.
fn drop_cached(path: &Path) {
    use std::os::unix::io::AsRawFd;
    let file = File::open(path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: a valid open descriptor; the call only advises the kernel about its pages.
    let status = unsafe { posix_fadvise(file.as_raw_fd(), 0, 0, FADV_DONTNEED) };
    assert_eq!(status, 0, "posix_fadvise");
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times `once` 20 times (it returns the time of what it measures), printing each under `label`.
fn profile(label: &str, mut once: impl FnMut() -> Duration) {
    for _ in 0..20 {
        println!("{label} {:.1} ms", ms(once()));
    }
}

/// Writes `len` bytes from `block` as one sequential file, then fsyncs it.
fn write_plain(path: &Path, block: &[u8], len: u64) -> Duration {
    let start = Instant::now();
    let mut file = File::create(path).unwrap();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    file.sync_all().unwrap();
    drop(file);
    start.elapsed()
}

/// Writes `len` bytes from `block` as a new file beside `path`, fsyncs it, then (untimed) renames
/// it over `path`: the page cache holds the previous file while the new one is written, as
/// during a save.
fn write_new_file(path: &Path, block: &[u8], len: u64) -> Duration {
    let temporary = path.with_extension("tmp");
    let took = write_plain(&temporary, block, len);
    std::fs::rename(&temporary, path).unwrap();
    took
}

/// Reads the file sequentially into one reused 1 MiB buffer.
fn read_plain(path: &Path, buf: &mut [u8]) -> (Duration, u64) {
    let start = Instant::now();
    let mut file = File::open(path).unwrap();
    let mut total = 0u64;
    loop {
        let n = file.read(buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    (start.elapsed(), total)
}

/// Whether a baseline is one the floor (at most 2x) is held to: a write of the same
/// bytes, or a read that keeps them (`docs/benchmarks.md`, "Snapshots": "The floor's
/// baselines"). The read into a reused buffer keeps no byte (the kernel's copy alone): context.
enum Baseline {
    Floor,
    Context,
}

/// One row of the summary: `what` took `took`, `baseline` took `base`.
fn ratio_row(what: &str, took: Duration, baseline: &str, base: Duration, kind: Baseline) {
    let ratio = ms(took) / ms(base);
    let verdict = match kind {
        Baseline::Floor if ratio <= 2.0 => "met",
        Baseline::Floor => "**missed**",
        Baseline::Context if ratio <= 2.0 => "context (keeps no byte), within 2x",
        Baseline::Context => "context (keeps no byte), over 2x",
    };
    println!(
        "| {what} | {:.1} | {baseline} | {:.1} | {ratio:.2}x | {verdict} |",
        ms(took),
        ms(base)
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(7, |a| a.parse().expect("ROUNDS"));
    let dir = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = dir.join(format!("afc-snapshot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let snapshot = dir.join("cache.afcs");
    let plain = dir.join("plain.bin");

    let cache = build();
    for i in 0..ENTRIES {
        cache.put(key(i), VALUE).unwrap();
    }
    assert_eq!(cache.len() as u64, ENTRIES);
    let info = cache.save(&snapshot).unwrap();
    let bytes = info.file_bytes;
    println!(
        "{} entries, {} shards, snapshot of {} bytes ({:.1} MiB), in {}",
        info.entries,
        cache.shard_count(),
        bytes,
        bytes as f64 / (1 << 20) as f64,
        dir.display()
    );

    // For profilers: one operation 20 times, then nothing else.
    let profiled = if std::env::var_os("AFC_SAVE_LOOP").is_some() {
        profile("save_to(io::sink())", || {
            let start = Instant::now();
            cache.save_to(std::io::sink(), Default::default()).unwrap();
            start.elapsed()
        });
        true
    } else if std::env::var_os("AFC_VERIFY_LOOP").is_some() {
        profile("verify", || {
            let start = Instant::now();
            alphaforge_cache::snapshot::verify(&snapshot).unwrap();
            start.elapsed()
        });
        true
    } else if std::env::var_os("AFC_LOAD_LOOP").is_some() {
        profile("load", || {
            let target = build();
            let start = Instant::now();
            target.load(&snapshot).unwrap();
            start.elapsed()
        });
        true
    } else {
        false
    };
    if profiled {
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    let block = vec![0x5Au8; 1 << 20];
    let mut buf = vec![0u8; 1 << 20];
    let (mut save, mut write, mut load, mut read, mut fs_read, mut puts) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut write_new, mut read_mmap) = (vec![], vec![]);
    let plain_new = dir.join("plain-new.bin");
    let (mut cold_load, mut cold_read, mut cold_read_mmap) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let start = Instant::now();
        cache.save(&snapshot).unwrap();
        save.push(start.elapsed());
        write.push(write_plain(&plain, &block, bytes));
        write_new.push(write_new_file(&plain_new, &block, bytes));

        // Into the page cache, as the baseline reads below find it.
        assert_eq!(read_plain(&snapshot, &mut buf).1, bytes);
        let target = build();
        let start = Instant::now();
        let loaded = target.load(&snapshot).unwrap();
        load.push(start.elapsed());
        assert_eq!(loaded.entries_kept, ENTRIES);
        drop(target);
        let (took, total) = read_plain(&snapshot, &mut buf);
        assert_eq!(total, bytes);
        read.push(took);
        let start = Instant::now();
        let all = std::fs::read(&snapshot).unwrap();
        fs_read.push(start.elapsed());
        assert_eq!(all.len() as u64, bytes);
        drop(all);
        read_mmap.push(read_into_fresh_memory(&snapshot, bytes as usize));
        drop_cached(&snapshot);
        let target = build();
        let start = Instant::now();
        target.load(&snapshot).unwrap();
        cold_load.push(start.elapsed());
        drop(target);
        drop_cached(&snapshot);
        cold_read.push(read_plain(&snapshot, &mut buf).0);
        drop_cached(&snapshot);
        cold_read_mmap.push(read_into_fresh_memory(&snapshot, bytes as usize));

        let target = build();
        let start = Instant::now();
        for i in 0..ENTRIES {
            target.put(key(i), VALUE).unwrap();
        }
        puts.push(start.elapsed());
        drop(target);
        println!(
            "round {round}: save {:.1} ms, write {:.1} ms, new file {:.1} ms, load {:.1} ms, \
             read {:.1} ms, fs::read {:.1} ms, mmap read {:.1} ms, cold load {:.1} ms, \
             cold read {:.1} ms, cold read into fresh memory {:.1} ms, 1M puts {:.1} ms",
            ms(save[round]),
            ms(write[round]),
            ms(write_new[round]),
            ms(load[round]),
            ms(read[round]),
            ms(fs_read[round]),
            ms(read_mmap[round]),
            ms(cold_load[round]),
            ms(cold_read[round]),
            ms(cold_read_mmap[round]),
            ms(puts[round])
        );
    }
    let (save, write, load, read, fs_read, puts) = (
        median(save),
        median(write),
        median(load),
        median(read),
        median(fs_read),
        median(puts),
    );
    let (cold_load, cold_read) = (median(cold_load), median(cold_read));
    let cold_read_mmap = median(cold_read_mmap);
    let (write_new, read_mmap) = (median(write_new), median(read_mmap));
    println!("\nmedians of {rounds} rounds:");
    println!("| operation | ms | baseline | baseline ms | ratio | floor (at most 2x) |");
    println!("|---|---:|---|---:|---:|---|");
    let save_row = "save (1M entries)";
    let load_row = "load (1M entries)";
    ratio_row(
        save_row,
        save,
        &format!("write + fsync of {bytes} bytes"),
        write,
        Baseline::Floor,
    );
    ratio_row(
        save_row,
        save,
        "the same into a new file",
        write_new,
        Baseline::Floor,
    );
    ratio_row(
        load_row,
        load,
        "std::fs::read (malloc'd memory)",
        fs_read,
        Baseline::Floor,
    );
    ratio_row(
        load_row,
        load,
        "read into fresh memory (mmap)",
        read_mmap,
        Baseline::Floor,
    );
    let cold_row = "load from the disk (cold)";
    ratio_row(
        cold_row,
        cold_load,
        "read from the disk into fresh memory (cold)",
        cold_read_mmap,
        Baseline::Floor,
    );
    ratio_row(
        load_row,
        load,
        "read into a reused 1 MiB buffer",
        read,
        Baseline::Context,
    );
    ratio_row(
        cold_row,
        cold_load,
        "read from the disk into a reused 1 MiB buffer (cold)",
        cold_read,
        Baseline::Context,
    );
    println!(
        "| (context) 1M puts into an empty cache | {:.1} | | | | |",
        ms(puts)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
