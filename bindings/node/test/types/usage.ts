// Compiled by `npm run typecheck` (tsc --noEmit, strict): the declarations of index.d.ts describe
// the API as a TypeScript user calls it. The @ts-expect-error lines must stay errors.
import { Cache, CacheError, ManualClock, SnapshotInfo, Stats, verifySnapshot, version } from '../..';

const clock = new ManualClock(0);
const cache = new Cache({
  maxEntries: 1000,
  maxBytes: 1 << 20,
  ttl: 60_000,
  shards: 1,
  clock,
  onEvict: (key: Buffer, value: Buffer, cause) => {
    const c: 'evicted' | 'expired' | 'removed' | 'replaced' | 'cleared' = cause;
    void [key.length, value.length, c];
  },
});
const manual = new Cache({ maxEntries: 10, clock: 'manual' });

cache.set('k', 'v').set(Buffer.from('k2'), new Uint8Array([1, 2]), { ttl: 5 });
const b: Buffer | undefined = cache.get('k');
const s: string | undefined = cache.get('k', 'utf8');
const p: Buffer | undefined = cache.peek(new Uint8Array([1]));
const n: number | undefined = cache.getInto('k', Buffer.alloc(64));
const has: boolean = cache.has('k');
const removed: boolean = cache.delete('k');
const ttl: number | undefined = cache.remainingTtl('k');
const computed: Buffer = cache.getOrSet('x', (key: Buffer) => key.toString() + '!');
const computedText: string = cache.getOrSet('x', () => 'y', 'utf8');
const many: (Buffer | undefined)[] = cache.getMany(['a', Buffer.from('b')]);
const manyText: (string | undefined)[] = cache.getMany(['a'], 'hex');
cache.setMany([['a', '1'], [Buffer.from('b'), new Uint8Array(2)]]).setMany(new Map([['c', 'd']]), { ttl: 1 });
const keys: Buffer[] = cache.keys();
const keyTexts: string[] = cache.keys('utf8');
const stats: Stats = cache.stats();
const ratio: number = stats.hitRatio + cache.size + cache.weight + cache.expire();
cache.resize(10);
cache.setMaxBytes(1000);
cache.resetStats();
cache.clear();
manual.advance(1);
manual.setTime(0);
const now: number = manual.now() + clock.now();
const closed: boolean = cache.closed;
try {
  cache.close();
} catch (error) {
  if (error instanceof CacheError) {
    const code: string = error.code;
    const status: number = error.status;
    void [code, status];
  }
}
const v: string = version;
void [b, s, p, n, has, removed, ttl, computed, computedText, many, manyText, keys, keyTexts, ratio, now, closed, v];

// @ts-expect-error maxEntries is required
new Cache({});
// @ts-expect-error a number is not a key
cache.get(42);
// @ts-expect-error unknown clock
new Cache({ maxEntries: 1, clock: 'sundial' });
// @ts-expect-error size is read-only
cache.size = 3;

// Snapshots.
const saved: SnapshotInfo = manual.save('/tmp/x.afcs');
const loaded: number = manual.load('/tmp/x.afcs').entriesKept;
const checked: number = verifySnapshot('/tmp/x.afcs').fileBytes;
void [saved.formatMajor, saved.valueEncoding, loaded, checked];
// @ts-expect-error a path is a string
manual.save(42);
