'use strict';
// Snapshots through the Node.js binding: save, load and verifySnapshot.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');
const { Cache, CacheError, verifySnapshot } = require('..');

const isCacheError = (code) => (error) => error instanceof CacheError && error.code === code;

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afc-node-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const keys = (cache) => cache.keys().map((k) => k.toString());

test('a round trip restores entries, recency and remaining TTL', (t) => {
  const file = path.join(tempDir(t), 'snap.afcs');
  const source = new Cache({ maxEntries: 8, shards: 1, clock: 'manual' });
  source.set('a', '1', { ttl: 10 });
  source.set('b', Buffer.from([2, 0, 120]));
  source.set('c', '3', { ttl: 5 });
  source.get('a');
  source.advance(1);
  const saved = source.save(file);
  assert.equal(saved.entries, 3);
  assert.equal(saved.valueEncoding, 0);
  const verified = verifySnapshot(file);
  assert.equal(verified.entries, 3);
  assert.equal(verified.fileBytes, fs.statSync(file).size);
  source.close();

  const heard = [];
  const target = new Cache({
    maxEntries: 8,
    shards: 1,
    clock: 'manual',
    onEvict: (key, value, cause) => heard.push([key.toString(), value.toString(), cause]),
  });
  target.advance(50);
  target.set('old', 'x');
  assert.equal(target.load(file).entriesKept, 3);
  assert.deepEqual(heard, [['old', 'x', 'cleared']]);
  assert.deepEqual(keys(target), ['a', 'c', 'b']);
  assert.deepEqual(target.get('b'), Buffer.from([2, 0, 120]));
  assert.equal(target.remainingTtl('a'), 9);
  assert.equal(target.remainingTtl('c'), 4);
  assert.equal(target.remainingTtl('b'), Infinity);
  target.advance(4);
  assert.equal(target.has('c'), false);
  assert.equal(target.has('a'), true);
  target.close();
});

test('a corrupt or missing file is refused and the cache is unchanged', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'snap.afcs');
  const cache = new Cache({ maxEntries: 8, shards: 1, clock: 'manual' });
  cache.set('a', '1');
  cache.set('b', '2', { ttl: 5 });
  cache.save(file);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 6] ^= 0x55; // inside the last entry: its checksum no longer matches
  fs.writeFileSync(file, bytes);
  cache.set('c', '3');
  assert.throws(() => cache.load(file), isCacheError('AFC_SNAPSHOT_INVALID'));
  assert.throws(() => verifySnapshot(file), isCacheError('AFC_SNAPSHOT_INVALID'));
  assert.throws(() => cache.load(path.join(dir, 'missing.afcs')), isCacheError('AFC_IO_ERROR'));
  assert.throws(() => cache.save(path.join(dir, 'no', 'dir.afcs')), isCacheError('AFC_IO_ERROR'));
  assert.throws(() => cache.load(42), TypeError);
  assert.throws(() => cache.save('a\0b'), TypeError);
  assert.deepEqual(keys(cache), ['c', 'b', 'a']);
  assert.equal(cache.remainingTtl('b'), 5);
  cache.close();
  assert.throws(() => cache.save(file), isCacheError('AFC_NULL_POINTER'));
});
