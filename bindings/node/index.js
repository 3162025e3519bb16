'use strict';
// alphaforge-cache for Node.js: the engine's C library (libalphaforge_cache.so) through koffi.
// Types and documentation of every export: index.d.ts. Behaviour: docs/semantics.md.

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');

// ---- the library ------------------------------------------------------------------------------

const LIB_NAME = {
  darwin: 'libalphaforge_cache.dylib',
  win32: 'alphaforge_cache.dll',
}[process.platform] || 'libalphaforge_cache.so';

/** The shared library to load: $ALPHAFORGE_CACHE_LIB, the repository's release build, or the
 * system's (an installed library on the loader's search path). */
function libraryPath() {
  if (process.env.ALPHAFORGE_CACHE_LIB) return process.env.ALPHAFORGE_CACHE_LIB;
  const inTree = path.join(__dirname, '..', '..', 'target', 'release', LIB_NAME);
  return fs.existsSync(inTree) ? inTree : LIB_NAME;
}

const LIBRARY_PATH = libraryPath();
const lib = koffi.load(LIBRARY_PATH);

// Opaque handles travel as pointers (BigInt values in koffi 3): declared 'void *' here.
const P = 'void *';
const ListenerFn = koffi.proto(
  'void afc_listener_fn(void *user_data, const uint8_t *key, size_t key_len, ' +
    'const uint8_t *value, size_t value_len, int cause)'
);
const ComputeFn = koffi.proto(
  'int32_t afc_compute_fn(void *user_data, const uint8_t *key, size_t key_len, void *out)'
);
const SnapshotInfo = koffi.struct('afc_snapshot_info', {
  format_major: 'uint16_t',
  format_minor: 'uint16_t',
  value_encoding: 'uint32_t',
  entries: 'uint64_t',
  entries_kept: 'uint64_t',
  file_bytes: 'uint64_t',
});
const INFO_OUT = koffi.out(koffi.pointer(SnapshotInfo));

const C = {
  config_new: lib.func('afc_config_new', 'int', ['uint64_t', koffi.out(koffi.pointer(P))]),
  config_free: lib.func('afc_config_free', 'void', [P]),
  config_set_max_bytes: lib.func('afc_config_set_max_bytes', 'int', [P, 'uint64_t']),
  config_set_default_ttl_ns: lib.func('afc_config_set_default_ttl_ns', 'int', [P, 'uint64_t']),
  config_set_shards: lib.func('afc_config_set_shards', 'int', [P, 'uint32_t']),
  config_use_manual_clock: lib.func('afc_config_use_manual_clock', 'int', [P, 'uint64_t']),
  config_use_clock: lib.func('afc_config_use_clock', 'int', [P, P]),
  config_set_listener: lib.func('afc_config_set_listener', 'int', [
    P,
    koffi.pointer(ListenerFn),
    P,
  ]),
  cache_new: lib.func('afc_cache_new', 'int', [P, koffi.out(koffi.pointer(P))]),
  cache_free: lib.func('afc_cache_free', 'void', [P]),
  get: lib.func('afc_cache_get', 'int', [P, 'const uint8_t *', 'size_t', 'uint8_t *', 'size_t', 'uint64_t *']),
  peek: lib.func('afc_cache_peek', 'int', [P, 'const uint8_t *', 'size_t', 'uint8_t *', 'size_t', 'uint64_t *']),
  contains: lib.func('afc_cache_contains', 'int', [P, 'const uint8_t *', 'size_t', 'uint8_t *']),
  put: lib.func('afc_cache_put', 'int', [P, 'const uint8_t *', 'size_t', 'const uint8_t *', 'size_t', 'uint64_t']),
  remove: lib.func('afc_cache_remove', 'int', [P, 'const uint8_t *', 'size_t']),
  remaining_ttl: lib.func('afc_cache_remaining_ttl', 'int', [P, 'const uint8_t *', 'size_t', 'uint64_t *']),
  clear: lib.func('afc_cache_clear', 'int', [P]),
  len: lib.func('afc_cache_len', 'int', [P, 'uint64_t *']),
  weight: lib.func('afc_cache_weight', 'int', [P, 'uint64_t *']),
  // afc_stats is nine uint64_t in a row: read through a BigUint64Array.
  stats: lib.func('afc_cache_stats', 'int', [P, 'uint64_t *']),
  reset_stats: lib.func('afc_cache_reset_stats', 'int', [P]),
  expire: lib.func('afc_cache_expire', 'int', [P, 'uint64_t *']),
  resize: lib.func('afc_cache_resize', 'int', [P, 'uint64_t']),
  set_max_bytes: lib.func('afc_cache_set_max_bytes', 'int', [P, 'uint64_t']),
  clock_set: lib.func('afc_cache_clock_set', 'int', [P, 'uint64_t']),
  clock_advance: lib.func('afc_cache_clock_advance', 'int', [P, 'uint64_t']),
  clock_now: lib.func('afc_cache_clock_now', 'int', [P, 'uint64_t *']),
  get_many: lib.func('afc_cache_get_many', 'int', [
    P, 'const uint8_t *', 'const uint64_t *', 'size_t', 'uint8_t *', 'size_t', 'uint64_t *',
    'uint64_t *', 'uint64_t *',
  ]),
  put_many: lib.func('afc_cache_put_many', 'int', [
    P, 'const uint8_t *', 'const uint64_t *', 'const uint8_t *', 'const uint64_t *', 'size_t',
    'uint64_t',
  ]),
  get_or_insert: lib.func('afc_cache_get_or_insert', 'int', [
    P, 'const uint8_t *', 'size_t', koffi.pointer(ComputeFn), P, 'uint8_t *', 'size_t', 'uint64_t *',
  ]),
  value_out_set: lib.func('afc_value_out_set', 'int', [P, 'const uint8_t *', 'size_t']),
  iter_new: lib.func('afc_iter_new', 'int', [P, koffi.out(koffi.pointer(P))]),
  iter_next: lib.func('afc_iter_next', 'int', [
    P, koffi.out(koffi.pointer(P)), 'uint64_t *', koffi.out(koffi.pointer(P)), 'uint64_t *',
    'uint64_t *',
  ]),
  iter_free: lib.func('afc_iter_free', 'void', [P]),
  clock_new: lib.func('afc_clock_new', 'int', ['uint64_t', koffi.out(koffi.pointer(P))]),
  clock_free: lib.func('afc_clock_free', 'void', [P]),
  clock_set_shared: lib.func('afc_clock_set', 'int', [P, 'uint64_t']),
  clock_advance_shared: lib.func('afc_clock_advance', 'int', [P, 'uint64_t']),
  clock_now_shared: lib.func('afc_clock_now', 'int', [P, 'uint64_t *']),
  cache_save: lib.func('afc_cache_save', 'int', [P, 'const char *', 'uint32_t', INFO_OUT]),
  cache_load: lib.func('afc_cache_load', 'int', [P, 'const char *', 'uint32_t', INFO_OUT]),
  snapshot_verify: lib.func('afc_snapshot_verify', 'int', ['const char *', INFO_OUT]),
  last_error: lib.func('afc_last_error', 'const char *', []),
  status_name: lib.func('afc_status_name', 'const char *', ['int32_t']),
  version: lib.func('afc_version', 'const char *', []),
  abi_version: lib.func('afc_abi_version', 'uint32_t', []),
};

const OK = 0;
const NOT_FOUND = 1;
const BUFFER_TOO_SMALL = 2;
const MISSING = 0xffffffffffffffffn; // AFC_MISSING, and a remaining TTL of "never"
const NS_PER_MS = 1e6;
const CAUSES = ['evicted', 'expired', 'removed', 'replaced', 'cleared'];
const EMPTY = new Uint8Array(0);

// ---- errors -----------------------------------------------------------------------------------

/** A failure reported by the C library: `code` is the status name, `status` its number. */
class CacheError extends Error {
  constructor(status, message) {
    const code = C.status_name(status);
    super(`${code}: ${message}`);
    this.name = 'CacheError';
    this.code = code;
    this.status = status;
  }
}

/** Throws a CacheError for a failed status (with the calling thread's last error). */
function fail(status) {
  throw new CacheError(status, C.last_error());
}

function check(status) {
  if (status !== OK) fail(status);
}

// ---- conversions ------------------------------------------------------------------------------

const ENCODING_BYTES = 0; // AFC_ENCODING_BYTES: the values of every Node, C, Go and Rust cache

/** A snapshot's path as the C string it will be (a string without NUL). */
function snapshotPath(path) {
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
    throw new TypeError('path must be a non-empty string without NUL characters');
  }
  return path;
}

/** What the C call wrote to its afc_snapshot_info, as a plain object. */
function snapshotInfo(info) {
  return {
    formatMajor: info.format_major,
    formatMinor: info.format_minor,
    valueEncoding: info.value_encoding,
    entries: Number(info.entries),
    entriesKept: Number(info.entries_kept),
    fileBytes: Number(info.file_bytes),
  };
}

/** Checks the whole snapshot `path` without loading it; returns what its header says. */
function verifySnapshot(path) {
  const info = {};
  check(C.snapshot_verify(snapshotPath(path), info));
  return snapshotInfo(info);
}

/** Bytes of a key or value: Buffers and typed arrays as they are, strings as UTF-8. */
function toBytes(value, what) {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new TypeError(`${what} must be a string, a Buffer or a typed array, not ${typeof value}`);
}

/** Milliseconds (fractions down to one nanosecond) as nanoseconds, checked. */
function toNanos(ms, what, allowZero) {
  if (typeof ms !== 'number' || Number.isNaN(ms)) throw new TypeError(`${what} must be a number of milliseconds`);
  if (ms < 0 || (ms === 0 && !allowZero)) {
    throw new RangeError(`${what} must be ${allowZero ? '>= 0' : '> 0'} milliseconds, got ${ms}`);
  }
  if (ms === Infinity) return MISSING - 1n;
  const ns = Math.round(ms * NS_PER_MS);
  if (ns === 0 && !allowZero) throw new RangeError(`${what} must be at least one nanosecond`);
  return BigInt(ns);
}

function toCount(n, what) {
  if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`${what} must be a non-negative integer`);
  return n;
}

/** A copy of `n` bytes of C memory at `ptr` (null when n is 0). */
function copyOut(ptr, n) {
  if (n === 0) return Buffer.alloc(0);
  return Buffer.from(new Uint8Array(koffi.view(ptr, n)));
}

function decode(bytes, encoding) {
  return encoding === undefined ? bytes : bytes.toString(encoding);
}

// ---- the clock --------------------------------------------------------------------------------

const clockRegistry = new FinalizationRegistry((ptr) => C.clock_free(ptr));

/** A manual clock that several caches can share (`new Cache({clock})`). */
class ManualClock {
  #ptr;
  #out = new BigUint64Array(1);

  constructor(startMs = 0) {
    const out = [null];
    check(C.clock_new(toNanos(startMs, 'startMs', true), out));
    this.#ptr = out[0];
    clockRegistry.register(this, this.#ptr, this);
  }

  /** Sets the time in milliseconds (it may move backwards). */
  set(ms) {
    check(C.clock_set_shared(this.#live(), toNanos(ms, 'ms', true)));
  }

  /** Moves the time forward by `ms` milliseconds. */
  advance(ms) {
    check(C.clock_advance_shared(this.#live(), toNanos(ms, 'ms', true)));
  }

  /** The time in milliseconds. */
  now() {
    check(C.clock_now_shared(this.#live(), this.#out));
    return Number(this.#out[0]) / NS_PER_MS;
  }

  /** Frees this reference (caches built with the clock keep theirs). */
  close() {
    if (this.#ptr !== null) {
      clockRegistry.unregister(this);
      C.clock_free(this.#ptr);
      this.#ptr = null;
    }
  }

  /** @internal the C handle */
  _handle() {
    return this.#live();
  }

  #live() {
    if (this.#ptr === null) throw new CacheError(3, 'the clock is closed');
    return this.#ptr;
  }
}

// ---- the cache --------------------------------------------------------------------------------

// A cache dropped without close() is freed when collected (its listener hears the entries left;
// what it throws then has nobody to reach).
const cacheRegistry = new FinalizationRegistry((held) => {
  C.cache_free(held.ptr);
  held.state.pending = null;
  if (held.callback) koffi.unregister(held.callback);
});

/** Tells the listener of one entry that left; keeps the first exception it throws. */
function notify(state, key, keyLen, value, valueLen, cause) {
  state.callbacks++;
  try {
    state.listener(copyOut(key, Number(keyLen)), copyOut(value, Number(valueLen)), CAUSES[cause]);
  } catch (error) {
    if (state.pending === null) state.pending = { error };
  } finally {
    state.callbacks--;
  }
}

const SCRATCH = 256; // the first try of a read; longer values are read again at their length

/** A thread-safe LRU/TTL cache of byte strings (see index.d.ts). */
class Cache {
  #ptr;
  #held; // what the finalization registry frees: { ptr, callback, state }
  // The listener and the first exception it threw during the current call. The registered
  // callback refers to this object, not to the cache, so that a cache nobody refers to can be
  // collected (and freed by the registry).
  // `callbacks` counts the listener and getOrSet calls running: close() refuses to free the cache
  // under a C call that is still using it.
  #state = { listener: null, pending: null, callbacks: 0 };
  #buf = new Uint8Array(SCRATCH); // what the C calls write into (a plain Uint8Array: cheaper for koffi)
  #view = Buffer.from(this.#buf.buffer); // the same memory, to copy from
  #out = new BigUint64Array(1);
  #byte = new Uint8Array(1);

  constructor(options) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const { maxEntries, maxBytes, ttl, shards, clock, onEvict } = options;
    if (!Number.isSafeInteger(maxEntries)) throw new TypeError('maxEntries must be an integer');
    if (maxEntries < 0) throw new CacheError(5, `max_entries must be between 1 and 4294967294 (got ${maxEntries})`);
    const out = [null];
    check(C.config_new(maxEntries, out));
    const config = out[0];
    let callback = null;
    try {
      if (maxBytes !== undefined && maxBytes !== null) {
        check(C.config_set_max_bytes(config, toCount(maxBytes, 'maxBytes')));
      }
      if (ttl !== undefined && ttl !== null) check(C.config_set_default_ttl_ns(config, toNanos(ttl, 'ttl')));
      if (shards !== undefined && shards !== null) check(C.config_set_shards(config, toCount(shards, 'shards')));
      if (clock === 'manual') {
        check(C.config_use_manual_clock(config, 0n));
      } else if (clock instanceof ManualClock) {
        check(C.config_use_clock(config, clock._handle()));
      } else if (clock !== undefined && clock !== null && clock !== 'monotonic') {
        throw new TypeError("clock must be 'monotonic', 'manual' or a ManualClock");
      }
      if (onEvict !== undefined && onEvict !== null) {
        if (typeof onEvict !== 'function') throw new TypeError('onEvict must be a function');
        const state = this.#state;
        state.listener = onEvict;
        callback = koffi.register(
          (_, key, keyLen, value, valueLen, cause) => notify(state, key, keyLen, value, valueLen, cause),
          koffi.pointer(ListenerFn)
        );
        check(C.config_set_listener(config, callback, null));
      }
      check(C.cache_new(config, out));
    } catch (error) {
      if (callback) koffi.unregister(callback);
      throw error;
    } finally {
      C.config_free(config);
    }
    this.#ptr = out[0];
    this.#held = { ptr: this.#ptr, callback, state: this.#state };
    cacheRegistry.register(this, this.#held, this);
  }

  /** Rethrows what the listener threw during the call that just returned, or fails. */
  #settle(status) {
    const state = this.#state;
    if (state.pending !== null) {
      const { error } = state.pending;
      state.pending = null;
      if (status === OK || status === NOT_FOUND) throw error;
    }
    if (status !== OK && status !== NOT_FOUND) fail(status);
  }

  #live() {
    if (this.#ptr === null) throw new CacheError(3, 'the cache is closed');
    return this.#ptr;
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** A read through `fn` (get or peek): a copy of the value, or undefined on a miss. */
  #read(fn, key, encoding) {
    const k = toBytes(key, 'key');
    const buf = this.#buf;
    const status = fn(this.#live(), k, k.length, buf, buf.length, this.#out);
    if (status === OK) {
      this.#settle(status);
      const n = Number(this.#out[0]);
      if (encoding !== undefined) return this.#view.toString(encoding, 0, n);
      const value = Buffer.allocUnsafe(n);
      this.#view.copy(value, 0, 0, n);
      return value;
    }
    if (status === BUFFER_TOO_SMALL) {
      // The get counted its hit: read it again with peeks, without a second one.
      this.#settle(OK);
      const value = this.#readAgain(k, Number(this.#out[0]));
      return value === undefined ? undefined : decode(value, encoding);
    }
    this.#settle(status);
    return undefined;
  }

  /** The value of `k`, known to be about `n` bytes, read with peeks (undefined if removed). */
  #readAgain(k, n) {
    for (;;) {
      const value = Buffer.allocUnsafe(n);
      const status = C.peek(this.#ptr, k, k.length, value, n, this.#out);
      if (status === OK) return value.subarray(0, Number(this.#out[0]));
      if (status === NOT_FOUND) return undefined;
      if (status !== BUFFER_TOO_SMALL) fail(status);
      n = Number(this.#out[0]);
    }
  }

  get(key, encoding) {
    return this.#read(C.get, key, encoding);
  }

  peek(key, encoding) {
    return this.#read(C.peek, key, encoding);
  }

  getInto(key, target) {
    const k = toBytes(key, 'key');
    if (!(target instanceof Uint8Array)) throw new TypeError('target must be a Buffer or a Uint8Array');
    const status = C.get(this.#live(), k, k.length, target, target.length, this.#out);
    this.#settle(status === BUFFER_TOO_SMALL ? OK : status);
    return status === NOT_FOUND ? undefined : Number(this.#out[0]);
  }

  has(key) {
    const k = toBytes(key, 'key');
    const status = C.contains(this.#live(), k, k.length, this.#byte);
    this.#settle(status);
    return this.#byte[0] !== 0;
  }

  remainingTtl(key) {
    const k = toBytes(key, 'key');
    const status = C.remaining_ttl(this.#live(), k, k.length, this.#out);
    this.#settle(status);
    if (status === NOT_FOUND) return undefined;
    return this.#out[0] === MISSING ? Infinity : Number(this.#out[0]) / NS_PER_MS;
  }

  // ---- writes ---------------------------------------------------------------------------------

  set(key, value, options) {
    const k = toBytes(key, 'key');
    const v = toBytes(value, 'value');
    const ttl = options && options.ttl !== undefined ? toNanos(options.ttl, 'ttl') : 0n;
    this.#settle(C.put(this.#live(), k, k.length, v, v.length, ttl));
    return this;
  }

  delete(key) {
    const k = toBytes(key, 'key');
    const status = C.remove(this.#live(), k, k.length);
    this.#settle(status);
    return status === OK;
  }

  getOrSet(key, compute, encoding) {
    if (typeof compute !== 'function') throw new TypeError('compute must be a function');
    const k = toBytes(key, 'key');
    let thrown = null;
    const state = this.#state;
    const trampoline = (_, keyPtr, keyLen, out) => {
      state.callbacks++;
      try {
        const v = toBytes(compute(copyOut(keyPtr, Number(keyLen))), 'the computed value');
        return C.value_out_set(out, v, v.length) === OK ? 0 : 1;
      } catch (error) {
        thrown = { error };
        return 1;
      } finally {
        state.callbacks--;
      }
    };
    const buf = this.#buf;
    const status = C.get_or_insert(this.#live(), k, k.length, trampoline, null, buf, buf.length, this.#out);
    if (thrown !== null) {
      this.#state.pending = null;
      throw thrown.error;
    }
    this.#settle(status === BUFFER_TOO_SMALL ? OK : status);
    if (status === OK) return decode(Buffer.from(buf.subarray(0, Number(this.#out[0]))), encoding);
    const value = this.#readAgain(k, Number(this.#out[0]));
    if (value === undefined) throw new CacheError(1, 'the value was removed while it was read');
    return decode(value, encoding);
  }

  // ---- many keys ------------------------------------------------------------------------------

  getMany(keys, encoding) {
    const n = keys.length;
    if (n === 0) return [];
    const parts = Array.from(keys, (key) => toBytes(key, 'key'));
    const flat = Buffer.concat(parts);
    const lens = new BigUint64Array(n);
    for (let i = 0; i < n; i++) lens[i] = BigInt(parts[i].length);
    const values = Buffer.allocUnsafe(Math.max(64 * n, 256));
    const offsets = new BigUint64Array(n);
    const valueLens = new BigUint64Array(n);
    const status = C.get_many(this.#live(), flat, lens, n, values, values.length, offsets, valueLens, this.#out);
    this.#settle(status === BUFFER_TOO_SMALL ? OK : status);
    const result = new Array(n);
    for (let i = 0; i < n; i++) {
      let value;
      if (offsets[i] !== MISSING) {
        const start = Number(offsets[i]);
        value = Buffer.from(values.subarray(start, start + Number(valueLens[i])));
      } else if (valueLens[i] !== MISSING) {
        value = this.#readAgain(parts[i], Number(valueLens[i])); // a hit that did not fit
      }
      result[i] = value === undefined ? undefined : decode(value, encoding);
    }
    return result;
  }

  setMany(entries, options) {
    const items = entries instanceof Map ? [...entries] : Array.from(entries);
    const n = items.length;
    const ttl = options && options.ttl !== undefined ? toNanos(options.ttl, 'ttl') : 0n;
    if (n === 0) return this;
    const keys = new Array(n);
    const values = new Array(n);
    const keyLens = new BigUint64Array(n);
    const valueLens = new BigUint64Array(n);
    for (let i = 0; i < n; i++) {
      keys[i] = toBytes(items[i][0], 'key');
      values[i] = toBytes(items[i][1], 'value');
      keyLens[i] = BigInt(keys[i].length);
      valueLens[i] = BigInt(values[i].length);
    }
    const flatKeys = Buffer.concat(keys);
    const flatValues = Buffer.concat(values);
    this.#settle(C.put_many(this.#live(), flatKeys, keyLens, flatValues, valueLens, n, ttl));
    return this;
  }

  keys(encoding) {
    const out = [null];
    check(C.iter_new(this.#live(), out));
    const iter = out[0];
    const keys = [];
    try {
      const key = [null];
      const value = [null];
      const keyLen = new BigUint64Array(1);
      const valueLen = new BigUint64Array(1);
      const ttl = new BigUint64Array(1);
      while (C.iter_next(iter, key, keyLen, value, valueLen, ttl) === OK) {
        keys.push(decode(copyOut(key[0], Number(keyLen[0])), encoding));
      }
    } finally {
      C.iter_free(iter);
    }
    return keys;
  }

  // ---- the whole cache ------------------------------------------------------------------------

  get size() {
    this.#settle(C.len(this.#live(), this.#out));
    return Number(this.#out[0]);
  }

  get weight() {
    this.#settle(C.weight(this.#live(), this.#out));
    return Number(this.#out[0]);
  }

  stats() {
    const s = new BigUint64Array(9);
    this.#settle(C.stats(this.#live(), s));
    const [hits, misses, inserts, updates, evictions, expirations, removals, entries, weight] = Array.from(
      s,
      Number
    );
    const lookups = hits + misses;
    return {
      hits,
      misses,
      inserts,
      updates,
      evictions,
      expirations,
      removals,
      entries,
      weight,
      hitRatio: lookups ? hits / lookups : 0,
    };
  }

  resetStats() {
    check(C.reset_stats(this.#live()));
  }

  clear() {
    this.#settle(C.clear(this.#live()));
  }

  expire() {
    this.#settle(C.expire(this.#live(), this.#out));
    return Number(this.#out[0]);
  }

  resize(maxEntries) {
    this.#settle(C.resize(this.#live(), toCount(maxEntries, 'maxEntries')));
  }

  setMaxBytes(maxBytes) {
    this.#settle(C.set_max_bytes(this.#live(), toCount(maxBytes, 'maxBytes')));
  }

  // ---- time -----------------------------------------------------------------------------------

  setTime(ms) {
    this.#settle(C.clock_set(this.#live(), toNanos(ms, 'ms', true)));
  }

  advance(ms) {
    this.#settle(C.clock_advance(this.#live(), toNanos(ms, 'ms', true)));
  }

  now() {
    this.#settle(C.clock_now(this.#live(), this.#out));
    return Number(this.#out[0]) / NS_PER_MS;
  }

  // ---- snapshots ------------------------------------------------------------------------------

  /** Saves every live entry to `path` atomically (temporary file, flush, rename). */
  save(path) {
    const info = {};
    this.#settle(C.cache_save(this.#live(), snapshotPath(path), ENCODING_BYTES, info));
    return snapshotInfo(info);
  }

  /** Replaces the entries with the snapshot's; on any error the cache is unchanged. */
  load(path) {
    const info = {};
    this.#settle(C.cache_load(this.#live(), snapshotPath(path), ENCODING_BYTES, info));
    return snapshotInfo(info);
  }

  // ---- closing --------------------------------------------------------------------------------

  get closed() {
    return this.#ptr === null;
  }

  close() {
    if (this.#ptr === null) return;
    if (this.#state.callbacks > 0) {
      throw new CacheError(4, 'close() from the listener or a getOrSet function: the call that runs it still uses the cache');
    }
    const { ptr, callback } = this.#held;
    this.#ptr = null;
    cacheRegistry.unregister(this);
    C.cache_free(ptr); // the listener hears every entry left as cleared
    if (callback) koffi.unregister(callback);
    this.#settle(OK);
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Cache.prototype[Symbol.dispose] = Cache.prototype.close;
  ManualClock.prototype[Symbol.dispose] = ManualClock.prototype.close;
}

module.exports = {
  Cache,
  ManualClock,
  CacheError,
  verifySnapshot,
  version: C.version(),
  abiVersion: C.abi_version(),
  libraryPath: LIBRARY_PATH,
};
