const { Cache } = require('alphaforge-cache');

const cache = new Cache({
  maxEntries: 100_000, // at most 100k entries
  maxBytes: 256 << 20, // and 256 MiB of keys + values
  ttl: 60_000, // entries expire 60 s (in ms) after their set
  clock: 'manual', // simulated time (default: monotonic)
  onEvict: (key, value, cause) => console.log(`${key} left: ${cause}`),
});

cache.set('bar:AAPL:1m:0930', '189.70,190.10,189.55,189.98'); // strings are UTF-8 bytes
cache.set(Buffer.from('quote:AAPL'), Buffer.from('189.97/189.99'), { ttl: 500 });
console.log(cache.get('bar:AAPL:1m:0930', 'utf8')); // a string; without an encoding, a Buffer
console.log(cache.getMany(['quote:AAPL', 'quote:MSFT'], 'utf8')); // one call for many keys
cache.advance(1000); // quote:AAPL has now expired
cache.delete('bar:AAPL:1m:0930');
try {
  cache.resize(0); // errors are CacheError, with the C status as `code`
} catch (error) {
  console.log(error.code);
}
const { hits, misses, hitRatio } = cache.stats(); // reclaims expired entries first
console.log(hits, 'hits,', misses, 'misses, ratio', hitRatio, 'live', cache.has('quote:AAPL'));
cache.close(); // frees it now (collection would, later)
