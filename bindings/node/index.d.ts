/// <reference types="node" />
// Type declarations of alphaforge-cache for Node.js (index.js).

/** A key or a value: bytes (a Buffer or any typed array / ArrayBuffer) or a string (its UTF-8). */
export type Bytes = string | Buffer | Uint8Array | ArrayBufferView | ArrayBuffer;

/** Why an entry left the cache. */
export type Cause = 'evicted' | 'expired' | 'removed' | 'replaced' | 'cleared';

/** The listener: told of every entry that leaves the cache, with copies of its key and value. */
export type EvictionListener = (key: Buffer, value: Buffer, cause: Cause) => void;

export interface CacheOptions {
  /** At most this many entries (1 .. 4294967294). */
  maxEntries: number;
  /** Bound on the total weight, the key + value bytes of every entry. */
  maxBytes?: number;
  /** Time to live of entries set without one, in milliseconds (fractions down to 1 ns). */
  ttl?: number;
  /** Shard count; 1 gives exact global LRU order (default: the engine's, by machine size). */
  shards?: number;
  /**
   * 'monotonic' (the default): real time. 'manual': a clock of the cache's own at 0, moved only by
   * `setTime` and `advance`. A ManualClock: a manual clock shared with other caches.
   */
  clock?: 'monotonic' | 'manual' | ManualClock;
  /**
   * Told of every entry that leaves, after the cache released its locks (it may call the cache,
   * except while `close()` runs). If it throws, the other notifications still happen and the
   * call that caused them throws the first error once it is done. A listener that refers to its
   * cache keeps it from being collected: close such a cache explicitly.
   */
  onEvict?: EvictionListener;
}

export interface SetOptions {
  /** This entry's time to live in milliseconds (> 0), instead of the cache's default. */
  ttl?: number;
}

/** A cache's statistics at one moment (docs/semantics.md says what each counts). */
export interface Stats {
  hits: number;
  misses: number;
  inserts: number;
  updates: number;
  evictions: number;
  expirations: number;
  removals: number;
  entries: number;
  weight: number;
  /** hits / (hits + misses), or 0 when both are 0. */
  hitRatio: number;
}

/** A failure reported by the C library. */
export class CacheError extends Error {
  /** The status name, e.g. 'AFC_ENTRY_TOO_HEAVY', 'AFC_INVALID_CONFIG', 'AFC_NULL_POINTER' (closed). */
  readonly code: string;
  /** The status number of the C ABI. */
  readonly status: number;
}

/** A manual clock that several caches can share: moving it moves time for all of them. */
export class ManualClock {
  /** A clock at `startMs` milliseconds (0 by default). */
  constructor(startMs?: number);
  /** Sets the time in milliseconds (it may move backwards). */
  set(ms: number): void;
  /** Moves the time forward by `ms` milliseconds. */
  advance(ms: number): void;
  /** The time in milliseconds. */
  now(): number;
  /** Frees this reference to the clock (caches built with it keep theirs). */
  close(): void;
}

/**
 * A thread-safe LRU/TTL cache of byte strings, in the engine's memory (not the JS heap). Values
 * come back as new Buffers (or strings, given an encoding). Errors are CacheError (from the
 * library), TypeError and RangeError (bad arguments).
 */
export class Cache {
  constructor(options: CacheOptions);

  /** The value of `key` (the entry becomes the most recently used), or undefined. */
  get(key: Bytes): Buffer | undefined;
  get(key: Bytes, encoding: BufferEncoding): string | undefined;
  /** As get, without changing recency or the hit/miss counters. */
  peek(key: Bytes): Buffer | undefined;
  peek(key: Bytes, encoding: BufferEncoding): string | undefined;
  /**
   * A get that copies the value into `target` (no allocation): returns the value's length, or
   * undefined on a miss. A length above `target.length` means nothing was written (the hit is
   * counted): read it again with a larger target, or with `peek`.
   */
  getInto(key: Bytes, target: Uint8Array): number | undefined;
  /** Whether `key` has a live entry (recency and counters unchanged). */
  has(key: Bytes): boolean;
  /** Stores `key -> value` as the most recently used entry. Throws CacheError
   * 'AFC_ENTRY_TOO_HEAVY' for an entry heavier than maxBytes (the cache is then unchanged). */
  set(key: Bytes, value: Bytes, options?: SetOptions): this;
  /** Removes `key`; whether it had a live entry. */
  delete(key: Bytes): boolean;
  /** Milliseconds `key` has left, Infinity if it never expires, undefined if absent. */
  remainingTtl(key: Bytes): number | undefined;
  /** The value of `key`; on a miss, `compute(key)` gives it and it is stored. */
  getOrSet(key: Bytes, compute: (key: Buffer) => Bytes): Buffer;
  getOrSet(key: Bytes, compute: (key: Buffer) => Bytes, encoding: BufferEncoding): string;

  /** The values of many keys in one call, in order (undefined for a miss). */
  getMany(keys: readonly Bytes[]): (Buffer | undefined)[];
  getMany(keys: readonly Bytes[], encoding: BufferEncoding): (string | undefined)[];
  /** Stores many entries in one call, all or none. */
  setMany(entries: Iterable<readonly [Bytes, Bytes]> | Map<Bytes, Bytes>, options?: SetOptions): this;
  /** The keys of a consistent snapshot, most recently used first (shard after shard). */
  keys(): Buffer[];
  keys(encoding: BufferEncoding): string[];

  /** Live entries. */
  readonly size: number;
  /** Total weight of the live entries. */
  readonly weight: number;
  /** The statistics (expired entries are reclaimed first). */
  stats(): Stats;
  /** Sets the counters back to zero (not entries and weight). */
  resetStats(): void;
  /** Removes every entry (heard as cleared, or expired). */
  clear(): void;
  /** Reclaims every expired entry now; returns how many. */
  expire(): number;
  /** Changes the entry bound (at least the shard count), evicting beyond it. */
  resize(maxEntries: number): void;
  /** Changes the byte bound of a cache built with one, evicting beyond it. */
  setMaxBytes(maxBytes: number): void;

  /** Sets the cache's manual clock, in milliseconds (CacheError 'AFC_NOT_MANUAL_CLOCK' otherwise). */
  setTime(ms: number): void;
  /** Moves the cache's manual clock forward. */
  advance(ms: number): void;
  /** The time of the cache's clock in milliseconds. */
  now(): number;

  /** Saves every live entry (recency order and remaining TTLs) to `path` atomically: a temporary
   * file beside it, flushed, then renamed over it. Throws CacheError 'AFC_IO_ERROR' when the file
   * system refuses. */
  save(path: string): SnapshotInfo;
  /** Replaces the entries with those of the snapshot `path` (the listener hears the previous ones
   * as cleared; with smaller bounds the most recently used that fit are kept). The whole file is
   * checked first: on any error the cache is unchanged. Throws CacheError 'AFC_IO_ERROR',
   * 'AFC_SNAPSHOT_INVALID' (not a snapshot, truncated, corrupt), 'AFC_SNAPSHOT_UNSUPPORTED' (a
   * newer format) or 'AFC_SNAPSHOT_MISMATCH' (values that are not plain bytes). */
  load(path: string): SnapshotInfo;

  /** Whether close() was called. */
  readonly closed: boolean;
  /** Frees the cache now (the listener hears the entries left as cleared); later calls throw
   * CacheError 'AFC_NULL_POINTER'. A cache never closed is freed when collected. From its own
   * listener or getOrSet function it throws CacheError 'AFC_INVALID_ARGUMENT' (the call that runs
   * them still uses the cache). */
  close(): void;
}

/** What a save, load or verifySnapshot found in a snapshot file. */
export interface SnapshotInfo {
  formatMajor: number;
  formatMinor: number;
  /** 0: bytes (every Node, C, Go and Rust cache); 1: Python pickles; 2: an application's codec. */
  valueEncoding: number;
  /** The entries in the file. */
  entries: number;
  /** After a load, the entries the cache holds (fewer with smaller bounds); else `entries`. */
  entriesKept: number;
  /** The file's length in bytes. */
  fileBytes: number;
}

/** Checks the whole snapshot `path` without loading it; throws CacheError as Cache.load does. */
export function verifySnapshot(path: string): SnapshotInfo;

/** The version of the C library loaded, e.g. "0.1.0". */
export const version: string;
/** Its ABI version. */
export const abiVersion: number;
/** The path of the library loaded ($ALPHAFORGE_CACHE_LIB, the repository's build, or the system's). */
export const libraryPath: string;
