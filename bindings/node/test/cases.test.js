'use strict';
// The shared cases of tests/cases/*.json (format in tests/cases/README.md), replayed through the
// Node.js API: one test per case.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { test } = require('node:test');
const { Cache, CacheError } = require('..');

const CASES_DIR = path.join(__dirname, '..', '..', '..', 'tests', 'cases');
const ERROR_CODES = {
  invalid_config: 'AFC_INVALID_CONFIG',
  invalid_argument: 'AFC_INVALID_ARGUMENT',
  entry_too_heavy: 'AFC_ENTRY_TOO_HEAVY',
  io_error: 'AFC_IO_ERROR',
  snapshot_invalid: 'AFC_SNAPSHOT_INVALID',
};
const ms = (ns) => ns / 1e6; // the case files' nanoseconds as the API's milliseconds

const files = fs.readdirSync(CASES_DIR).filter((f) => f.endsWith('.json')).sort();
const cases = files.flatMap((file) =>
  JSON.parse(fs.readFileSync(path.join(CASES_DIR, file), 'utf8')).cases.map((c) => [file, c])
);

test('the case files are found', () => {
  assert.ok(cases.length >= 20, `${cases.length} cases in ${CASES_DIR}`);
});

function assertError(fn, name, at) {
  assert.throws(fn, (error) => error instanceof CacheError && error.code === ERROR_CODES[name], at);
}

const sortEvents = (events) => [...events].sort((a, b) => (a[0] + '\0' + a[1] < b[0] + '\0' + b[1] ? -1 : 1));

function replay(cache, events, op, at, dir) {
  const e = op.expect;
  const file = op.file === undefined ? undefined : path.join(dir, op.file);
  switch (op.op) {
    case 'put':
      return cache.set(op.key, op.value, op.ttl_ns === undefined ? undefined : { ttl: ms(op.ttl_ns) });
    case 'get':
    case 'peek':
      return assert.equal(cache[op.op](op.key, 'utf8'), e === null ? undefined : e, at);
    case 'contains':
      return assert.equal(cache.has(op.key), e, at);
    case 'remove':
      return assert.equal(cache.delete(op.key), e, at);
    case 'len':
      return assert.equal(cache.size, e, at);
    case 'weight':
      return assert.equal(cache.weight, e, at);
    case 'keys':
      return assert.deepEqual(cache.keys('utf8'), e, at);
    case 'ttl': {
      const left = cache.remainingTtl(op.key);
      if (e === null) return assert.equal(left, undefined, at);
      if (e === 'never') return assert.equal(left, Infinity, at);
      return assert.equal(Math.round(left * 1e6), e, at);
    }
    case 'advance':
      return cache.advance(ms(op.ns));
    case 'set_clock':
      return cache.setTime(ms(op.ns));
    case 'stats': {
      const s = cache.stats();
      for (const [field, want] of Object.entries(e)) {
        const got = field === 'hit_ratio' ? s.hitRatio : s[field];
        assert.ok(got !== undefined, `${at}: unknown statistic ${field}`);
        if (field === 'hit_ratio') assert.ok(Math.abs(got - want) < 1e-12, `${at}: hitRatio ${got}`);
        else assert.equal(got, want, `${at}: ${field}`);
      }
      return undefined;
    }
    case 'reset_stats':
      return cache.resetStats();
    case 'get_many':
      return assert.deepEqual(
        cache.getMany(op.keys, 'utf8'),
        e.map((v) => (v === null ? undefined : v)),
        at
      );
    case 'put_many':
      return cache.setMany(op.items, op.ttl_ns === undefined ? undefined : { ttl: ms(op.ttl_ns) });
    case 'expire':
      return assert.equal(cache.expire(), e, at);
    case 'clear':
      return cache.clear();
    case 'resize':
      return cache.resize(op.max_entries);
    case 'events': {
      const heard = events.splice(0);
      return op.unordered ? assert.deepEqual(sortEvents(heard), sortEvents(e), at) : assert.deepEqual(heard, e, at);
    }
    case 'close':
      return cache.close();
    case 'save':
      return cache.save(file);
    case 'load':
      return cache.load(file);
    case 'write_file':
      return fs.writeFileSync(file, Buffer.from(op.content, 'utf8'));
    case 'truncate':
      return fs.truncateSync(file, op.bytes);
    default:
      throw new Error(`${at}: unknown operation ${op.op}`);
  }
}

for (const [file, c] of cases) {
  test(`${file}: ${c.name}`, () => {
    const events = [];
    const options = {
      maxEntries: c.cache.max_entries,
      maxBytes: c.cache.max_bytes,
      ttl: c.cache.ttl_ns === undefined ? undefined : ms(c.cache.ttl_ns),
      shards: c.cache.shards,
      clock: 'manual',
      onEvict: (key, value, cause) => events.push([key.toString('utf8'), value.toString('utf8'), cause]),
    };
    if (c.create_error) {
      assertError(() => new Cache(options), c.create_error, 'construction');
      return;
    }
    const cache = new Cache(options);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afc-cases-'));
    try {
      c.ops.forEach((op, i) => {
        const at = `op ${i} ${JSON.stringify(op)}`;
        if (op.error) assertError(() => replay(cache, events, op, at, dir), op.error, at);
        else replay(cache, events, op, at, dir);
      });
    } finally {
      cache.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
