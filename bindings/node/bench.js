'use strict';
// Per-call cost of a get hit through the Node.js binding, on the workload of benches/c/bench.c:
// 100,000 entries (default shards), 16-byte keys, 64-byte values, the same SplitMix64 key sets.
//
//   node bench.js [gets_per_round]      (npm run bench; default 500,000)
//
//   getInto    cache.getInto(key, target): the value copied into a reused Buffer (no allocation)
//   get        cache.get(key): a new Buffer per hit
//   raw koffi  afc_cache_get called through koffi with no wrapper (the FFI's own share)

const koffi = require('koffi');
const { Cache, libraryPath } = require('.');

const MASK = (1n << 64n) - 1n;
function mix(z) {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return z ^ (z >> 31n);
}

/** The keys of ids start..end of benches/rust/src/lib.rs, shuffled with seed. */
function benchKeys(start, end, seed) {
  const ids = [];
  for (let i = start; i < end; i++) ids.push(BigInt(i));
  let state = BigInt(seed);
  for (let i = ids.length - 1; i >= 1; i--) {
    state = (state + 0x9e3779b97f4a7c15n) & MASK;
    const j = Number(mix(state) % BigInt(i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  return ids.map((id) => {
    const k = Buffer.alloc(16);
    k.writeBigUInt64LE(mix(id ^ 0x5deece66d1ce4e5bn), 0);
    k.writeBigUInt64LE(id, 8);
    return k;
  });
}

const gets = Number(process.argv[2] || 500000);
const ROUNDS = 7;
const cache = new Cache({ maxEntries: 100000 });
const value = Buffer.alloc(64, 0xa5);
const all = benchKeys(0, 100000, 1);
for (const k of all) cache.set(k, value);
const keys = all.filter((k) => cache.has(k));

const lib = koffi.load(libraryPath);
const rawGet = lib.func('afc_cache_get', 'int', ['void *', 'const uint8_t *', 'size_t', 'uint8_t *', 'size_t', 'uint64_t *']);
// The raw calls go to a cache of their own, made through the C API directly.
const configNew = lib.func('afc_config_new', 'int', ['uint64_t', koffi.out(koffi.pointer('void *'))]);
const cacheNew = lib.func('afc_cache_new', 'int', ['void *', koffi.out(koffi.pointer('void *'))]);
const put = lib.func('afc_cache_put', 'int', ['void *', 'const uint8_t *', 'size_t', 'const uint8_t *', 'size_t', 'uint64_t']);
const out = [null];
configNew(100000, out);
const config = out[0];
cacheNew(config, out);
const raw = out[0];
for (const k of all) put(raw, k, 16, value, 64, 0n);

const target = Buffer.alloc(64);
const len = new BigUint64Array(1);
let checksum = 0;
const workloads = {
  getInto: (k) => cache.getInto(k, target),
  get: (k) => cache.get(k).length,
  'raw koffi': (k) => (rawGet(raw, k, 16, target, 64, len) === 0 ? 64 : 0),
};

function round(fn) {
  let j = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < gets; i++) {
    checksum += fn(keys[j]);
    if (++j === keys.length) j = 0;
  }
  return Number(process.hrtime.bigint() - start) / gets;
}

console.log(
  `alphaforge-cache through Node.js ${process.version} + koffi ${koffi.version}: ` +
    `${keys.length} of 100000 keys resident, 16-byte keys, 64-byte values, ${gets} gets per round`
);
const results = Object.fromEntries(Object.keys(workloads).map((name) => [name, []]));
for (const fn of Object.values(workloads)) round(fn); // warm-up (and JIT)
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of Object.entries(workloads)) results[name].push(round(fn));
}
for (const [name, times] of Object.entries(results)) {
  times.sort((a, b) => a - b);
  console.log(
    `get_hit ${name.padEnd(10)} ${times[ROUNDS >> 1].toFixed(1).padStart(6)} ns/get  ` +
      `(median of ${ROUNDS} rounds; best ${times[0].toFixed(1)})`
  );
}
console.log(`(checksum ${checksum})`);
cache.close();
lib.func('afc_cache_free', 'void', ['void *'])(raw);
lib.func('afc_config_free', 'void', ['void *'])(config);
