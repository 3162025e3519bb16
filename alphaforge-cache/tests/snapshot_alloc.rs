//! What a snapshot's save and load allocate, checked with a counting global allocator, in a
//! binary of its own so that no other test allocates meanwhile (its tests take turns): a file
//! whose length fields claim far more than it holds must not make the loader allocate for the
//! claim, and a large value is held once, not twice, by a save and by a load.

use alphaforge_cache::{Cache, LoadOptions, SaveOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The tests of this binary run one at a time: the counters are global.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

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

/// The most memory live at once during `f`, above what was live before it.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - base
}

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

/// Rewrites both checksums, so that only the lengths are wrong.
fn reseal(bytes: &mut [u8]) {
    let crc = crc32(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    let end = bytes.len() - 4;
    let crc = crc32(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn length_fields_claiming_terabytes_do_not_allocate() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let source = Cache::builder(10).shards(1).build().unwrap();
    source.put(b"key", [7u8; 100]).unwrap();
    let mut good = Vec::new();
    source.save_to(&mut good, SaveOptions::default()).unwrap();
    let patched = |at: usize, value: &[u8]| {
        let mut bytes = good.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        reseal(&mut bytes);
        bytes
    };
    // The value length claims 4 GiB - 4, the body length and entry count a terabyte and more.
    let huge_value = {
        let mut b = patched(69, &(u32::MAX - 4).to_le_bytes());
        b[32..40].copy_from_slice(&(1u64 << 40).to_le_bytes());
        reseal(&mut b);
        b
    };
    let cases = [
        ("value length", huge_value),
        ("entry count", patched(24, &(1u64 << 50).to_le_bytes())),
        ("body length", patched(32, &(1u64 << 40).to_le_bytes())),
    ];
    let dir = std::env::temp_dir().join(format!("afc-snapshot-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("absurd.afcs");
    // A large cache, so that the bounds do not cap what the loader might reserve.
    let target = Cache::builder(1 << 30).shards(1).build().unwrap();
    for (what, bytes) in &cases {
        let from_reader = peak_during(|| {
            let err = target
                .load_from(&bytes[..], LoadOptions::default())
                .unwrap_err();
            eprintln!("{what}: {err}");
        });
        std::fs::write(&path, bytes).unwrap();
        let from_file = peak_during(|| {
            let err = target.load(&path).unwrap_err();
            eprintln!("{what} (file): {err}");
        });
        eprintln!("{what}: peak {from_reader} bytes from a reader, {from_file} from a file");
        // The read buffer (64 KiB for a stream, the file's length for a file) and a little more.
        assert!(from_reader < 256 << 10, "{what}: {from_reader} bytes");
        assert!(from_file < 64 << 10, "{what}: {from_file} bytes");
    }
    assert!(target.is_empty());
    // A real load of the good file stays as small.
    let used = peak_during(|| {
        target.load_from(&good[..], LoadOptions::default()).unwrap();
    });
    assert!(used < 256 << 10, "{used} bytes");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_large_value_is_held_once_by_a_save_and_by_a_load() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const VALUE: usize = 32 << 20;
    let dir = std::env::temp_dir().join(format!("afc-snapshot-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("large.afcs");
    let value: Vec<u8> = (0..VALUE).map(|i| (i * 31 % 251) as u8).collect();
    let source = Cache::builder(10).shards(1).build().unwrap();
    source.put(b"small-before", b"a").unwrap();
    source.put(b"large", &value[..]).unwrap();
    source.put(b"small-after", b"b").unwrap();
    let saved = peak_during(|| {
        source.save(&path).unwrap();
    });
    // Without a byte bound a load stages in bulk; with one, entries are put in turn (and may
    // evict): both keep the bytes the reader assembled as the entry's own.
    let unbounded = Cache::builder(10).shards(1).build().unwrap();
    let bounded = Cache::builder(10).max_bytes(40 << 20).build().unwrap();
    for target in [&unbounded, &bounded] {
        let loaded = peak_during(|| {
            target.load(&path).unwrap();
        });
        eprintln!("one {VALUE}-byte value: peak {saved} bytes to save, {loaded} to load");
        assert_eq!(target.get(b"large").as_deref(), Some(&value[..]));
        assert_eq!(target.len(), 3);
        // A load holds the value once (allocated as long as the file says and has), plus its
        // read buffer, its blocks of small entries and its tables: a copy would be 32 MiB more.
        assert!(loaded < VALUE + (4 << 20), "load: {loaded} bytes");
    }
    // A save streams its bytes through buffers of a few MiB at most.
    assert!(saved < 8 << 20, "save: {saved} bytes");
    std::fs::remove_dir_all(&dir).unwrap();
}
