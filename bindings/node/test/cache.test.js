'use strict';
// Tests of the Node.js binding itself: bytes and strings, buffers, errors, close and collection,
// the listener's exceptions and re-entrancy, getOrSet, batches, clocks. The behaviour every binding
// shares is in cases.test.js.

const assert = require('node:assert/strict');
const { test } = require('node:test');
const v8 = require('node:v8');
const vm = require('node:vm');
const { Cache, CacheError, ManualClock, version, abiVersion } = require('..');

const isCacheError = (code) => (error) => error instanceof CacheError && error.code === code;

test('the library loaded is the one this binding was written for', () => {
  assert.match(version, /^\d+\.\d+\.\d+$/);
  assert.equal(abiVersion, 1);
});

test('keys and values: strings (UTF-8) and bytes are the same keys', () => {
  const cache = new Cache({ maxEntries: 16 });
  cache.set('é', 'v1');
  assert.deepEqual(cache.get(Buffer.from('é')), Buffer.from('v1'));
  assert.equal(cache.get(new Uint8Array([0xc3, 0xa9]), 'utf8'), 'v1');
  cache.set(Buffer.from([0, 1, 2]), new Uint16Array([0x4142]));
  assert.deepEqual(cache.get('\u0000\u0001\u0002'), Buffer.from([0x42, 0x41]));
  cache.set('', '');
  assert.deepEqual(cache.get(''), Buffer.alloc(0));
  assert.equal(cache.weight, 2 + 2 + 3 + 2);
  assert.throws(() => cache.set(42, 'x'), TypeError);
  assert.throws(() => cache.get({}), TypeError);
  cache.close();
});

test('values come back as copies, and long values are read whole', () => {
  const cache = new Cache({ maxEntries: 16 });
  const big = Buffer.alloc(100000, 'x');
  cache.set('big', big);
  cache.set('small', 's');
  const a = cache.get('small');
  a[0] = 0x7a;
  assert.equal(cache.get('small', 'utf8'), 's');
  assert.ok(cache.get('big').equals(big));
  assert.equal(cache.get('big', 'latin1').length, 100000);
  assert.equal(cache.stats().hits, 4); // a value that did not fit is read again, not counted twice
  const target = Buffer.alloc(8);
  assert.equal(cache.getInto('small', target), 1);
  assert.equal(target[0], 0x73);
  assert.equal(cache.getInto('big', target), 100000); // too long: nothing written
  assert.equal(cache.getInto('nope', target), undefined);
  cache.close();
});

test('errors: CacheError with the status, TypeError and RangeError for bad arguments', () => {
  assert.throws(() => new Cache({ maxEntries: 0 }), isCacheError('AFC_INVALID_CONFIG'));
  assert.throws(() => new Cache({ maxEntries: -1 }), isCacheError('AFC_INVALID_CONFIG'));
  assert.throws(() => new Cache({ maxEntries: 4, shards: 5 }), /shard/);
  assert.throws(() => new Cache({ maxEntries: 1.5 }), TypeError);
  assert.throws(() => new Cache({ maxEntries: 4, ttl: 0 }), RangeError);
  assert.throws(() => new Cache({ maxEntries: 4, ttl: NaN }), TypeError);
  assert.throws(() => new Cache({ maxEntries: 4, clock: 'sundial' }), TypeError);
  const cache = new Cache({ maxEntries: 4, maxBytes: 8 });
  cache.set('a', '1');
  assert.throws(() => cache.set('a', '123456789'), (e) => isCacheError('AFC_ENTRY_TOO_HEAVY')(e) && e.status === 6);
  assert.equal(cache.get('a', 'utf8'), '1');
  assert.throws(() => cache.set('b', '1', { ttl: -1 }), RangeError);
  assert.throws(() => cache.resize(0), isCacheError('AFC_INVALID_ARGUMENT'));
  assert.throws(() => cache.advance(1), isCacheError('AFC_NOT_MANUAL_CLOCK'));
  cache.close();
});

test('close: the listener hears what was left; later calls throw; twice is harmless', () => {
  const heard = [];
  const cache = new Cache({ maxEntries: 4, onEvict: (k, v, cause) => heard.push(`${k}=${v} ${cause}`) });
  cache.set('a', '1').set('b', '2');
  assert.equal(cache.closed, false);
  cache.close();
  assert.equal(cache.closed, true);
  assert.deepEqual(heard.sort(), ['a=1 cleared', 'b=2 cleared']);
  assert.throws(() => cache.get('a'), isCacheError('AFC_NULL_POINTER'));
  assert.throws(() => cache.set('a', '1'), isCacheError('AFC_NULL_POINTER'));
  assert.throws(() => cache.size, isCacheError('AFC_NULL_POINTER'));
  cache.close();
});

test('close from the listener or a getOrSet function is refused (the cache is still in use)', () => {
  let refused = 0;
  const cache = new Cache({
    maxEntries: 1,
    onEvict: (key, value, cause) => {
      if (cause === 'cleared') return;
      assert.throws(() => cache.close(), isCacheError('AFC_INVALID_ARGUMENT'));
      refused++;
    },
  });
  cache.set('a', '1').set('b', '2');
  cache.getOrSet('c', () => {
    assert.throws(() => cache.close(), isCacheError('AFC_INVALID_ARGUMENT'));
    refused++;
    return '3';
  });
  assert.equal(refused, 3); // a evicted by b, b evicted by c, and the getOrSet function
  assert.equal(cache.get('c', 'utf8'), '3');
  cache.close();
});

test('a cache nobody refers to is freed when collected', async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const heard = [];
  (() => {
    const cache = new Cache({ maxEntries: 4, onEvict: (k, v, cause) => heard.push(cause) });
    cache.set('a', '1');
  })();
  for (let i = 0; i < 50 && heard.length === 0; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.deepEqual(heard, ['cleared']);
});

test('listener: an exception reaches the caller after every notification was made', () => {
  const heard = [];
  let armed = true;
  const cache = new Cache({
    maxEntries: 4,
    shards: 1,
    onEvict: (key, value, cause) => {
      heard.push(key.toString());
      if (armed && cause === 'cleared') throw new Error(`listener failed on ${key}`);
    },
  });
  cache.set('a', '1').set('b', '2');
  assert.throws(() => cache.clear(), (e) => e.message === `listener failed on ${heard[0]}`);
  assert.equal(heard.length, 2);
  armed = false;
  assert.equal(cache.size, 0);
  cache.set('c', '3'); // no stale exception
  assert.equal(cache.get('c', 'utf8'), '3');
  cache.close();
});

test('listener: it may call the cache', () => {
  const seen = [];
  const cache = new Cache({
    maxEntries: 1,
    onEvict: (key, value, cause) => {
      if (cause !== 'cleared') seen.push(`${key}=${value} ${cause} has=${cache.has(key)} size=${cache.size}`);
    },
  });
  cache.set('a', '1').set('b', '2').set('b', '3');
  assert.deepEqual(seen, ['a=1 evicted has=false size=1', 'b=2 replaced has=true size=1']);
  cache.close();
});

test('getOrSet: computes on a miss only; an exception stores nothing', () => {
  const cache = new Cache({ maxEntries: 8 });
  let computed = 0;
  const compute = (key) => {
    computed++;
    return `v:${key}`;
  };
  assert.equal(cache.getOrSet('k', compute, 'utf8'), 'v:k');
  assert.equal(cache.getOrSet('k', compute, 'utf8'), 'v:k');
  assert.equal(computed, 1);
  const big = Buffer.alloc(5000, 'b');
  assert.ok(cache.getOrSet('big', () => big).equals(big));
  assert.throws(
    () =>
      cache.getOrSet('bad', () => {
        throw new RangeError('cannot compute');
      }),
    /cannot compute/
  );
  assert.equal(cache.has('bad'), false);
  cache.close();
});

test('batches: getMany (long values included) and setMany (arrays and Maps)', () => {
  const cache = new Cache({ maxEntries: 16, shards: 1, clock: 'manual' });
  const big = Buffer.alloc(10000, 'z');
  cache.setMany([
    ['a', '1'],
    ['b', big],
    ['c', ''],
  ]);
  const got = cache.getMany(['a', 'x', 'b', 'c']);
  assert.deepEqual(got[0], Buffer.from('1'));
  assert.equal(got[1], undefined);
  assert.ok(got[2].equals(big));
  assert.deepEqual(got[3], Buffer.alloc(0));
  assert.deepEqual([cache.stats().hits, cache.stats().misses], [3, 1]);
  cache.setMany(new Map([['t', '1']]), { ttl: 0.000005 });
  assert.equal(cache.remainingTtl('t'), 0.000005);
  assert.deepEqual(cache.keys('utf8'), ['t', 'c', 'b', 'a']);
  assert.deepEqual(cache.getMany([]), []);
  cache.close();
});

test('clocks: a ManualClock shared by two caches moves both', () => {
  const clock = new ManualClock(1000);
  const a = new Cache({ maxEntries: 4, clock, ttl: 1000 });
  const b = new Cache({ maxEntries: 4, clock, ttl: 2000 });
  a.set('k', 'v');
  b.set('k', 'v');
  clock.advance(1000);
  assert.equal(clock.now(), 2000);
  assert.equal(b.now(), 2000);
  assert.equal(a.has('k'), false);
  assert.equal(b.has('k'), true);
  clock.set(0);
  assert.equal(b.remainingTtl('k'), 3000);
  clock.close(); // the caches keep their own reference: either can still move the shared time
  b.advance(5);
  assert.equal(a.now(), 5);
  const never = new Cache({ maxEntries: 4 });
  never.set('k', 'v');
  assert.equal(never.remainingTtl('k'), Infinity);
  for (const c of [a, b, never]) c.close();
});
