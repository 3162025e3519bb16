package afcache_test

// Many goroutines on one cache (run with go test -race): bounds, exact counters after they stop,
// the listener's counts, values never torn or misplaced, GetOrInsert computing once per key, and
// Close racing with calls in flight. AFC_TEST_THREAD_OPS sets the operations per goroutine.

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	afcache "github.com/alphaforge/alphaforge-cache/bindings/go"
)

const goroutines = 16

func opsPerGoroutine() int {
	if n, err := strconv.Atoi(os.Getenv("AFC_TEST_THREAD_OPS")); err == nil {
		return n
	}
	return 5000
}

func keyOf(n uint64) []byte { return []byte("key:" + strconv.FormatUint(n, 10)) }

// valueOf names its key, so a torn or misplaced value is caught.
func valueOf(n uint64, g, i int) []byte {
	return []byte(fmt.Sprintf("value-of-%d/%d/%d%s", n, g, i, bytes.Repeat([]byte("."), i%40)))
}

func matches(value []byte, n uint64) bool {
	return bytes.HasPrefix(value, []byte(fmt.Sprintf("value-of-%d/", n)))
}

func TestHammer(t *testing.T) {
	var heard [5]atomic.Uint64
	var reentrant atomic.Uint64
	var c *afcache.Cache
	c = newCache(t, afcache.Options{MaxEntries: 512, MaxBytes: 24000, OnEvict: func(key, _ []byte, cause afcache.Cause) {
		heard[cause].Add(1)
		if cause != afcache.Cleared && len(key)%2 == 0 && !c.Contains(key) {
			reentrant.Add(1) // the listener calls back into the cache: no deadlock
		}
	}})
	ops := opsPerGoroutine()
	var gets, torn atomic.Uint64
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := uint64(g+1) * 0x9E3779B97F4A7C15
			buf := make([]byte, 0, 128)
			myGets := uint64(0)
			for i := 0; i < ops; i++ {
				rng ^= rng << 13
				rng ^= rng >> 7
				rng ^= rng << 17
				n := (rng >> 8) % 1500
				key := keyOf(n)
				switch rng % 20 {
				case 0, 1, 2, 3, 4, 5, 6, 7, 8, 9:
					myGets++
					var ok bool
					if buf, ok = c.AppendValue(buf[:0], key); ok && !matches(buf, n) {
						torn.Add(1)
					}
				case 10, 11, 12, 13, 14:
					if err := c.Put(key, valueOf(n, g, i)); err != nil {
						t.Error(err)
					}
				case 15, 16:
					c.Remove(key)
				case 17:
					got := c.GetMany([][]byte{key, keyOf(n + 1), keyOf(n + 2)})
					myGets += 3
					if (got[0] != nil && !matches(got[0], n)) || (got[2] != nil && !matches(got[2], n+2)) {
						torn.Add(1)
					}
				case 18:
					err := c.PutMany([]afcache.Item{{Key: key, Value: valueOf(n, g, 1)},
						{Key: keyOf(n + 1), Value: valueOf(n+1, g, 2)}}, 0)
					if err != nil {
						t.Error(err)
					}
				default:
					if v, ok := c.Peek(key); ok && !matches(v, n) {
						torn.Add(1)
					}
					_ = c.Len()
				}
			}
			gets.Add(myGets)
		}(g)
	}
	wg.Wait()

	s := c.Stats()
	if torn.Load() != 0 {
		t.Errorf("%d torn or misplaced values", torn.Load())
	}
	if c.Len() > 512 || c.Weight() > 24000 || s.Entries != uint64(c.Len()) {
		t.Errorf("bounds: len %d, weight %d, stats %+v", c.Len(), c.Weight(), s)
	}
	if s.Hits+s.Misses != gets.Load() {
		t.Errorf("hits %d + misses %d != gets %d", s.Hits, s.Misses, gets.Load())
	}
	if s.Inserts-s.Evictions-s.Expirations-s.Removals != s.Entries {
		t.Errorf("counters do not add up: %+v", s)
	}
	if heard[afcache.Evicted].Load() != s.Evictions || heard[afcache.Removed].Load() != s.Removals ||
		heard[afcache.Replaced].Load() != s.Updates {
		t.Errorf("listener heard evicted %d removed %d replaced %d; stats %+v", heard[afcache.Evicted].Load(),
			heard[afcache.Removed].Load(), heard[afcache.Replaced].Load(), s)
	}
	if s.Evictions == 0 || s.Hits == 0 || reentrant.Load() == 0 {
		t.Errorf("the workload did not exercise evictions, hits or re-entrant calls: %+v", s)
	}
	entries := s.Entries
	c.Close()
	if heard[afcache.Cleared].Load() != entries {
		t.Errorf("close reported %d entries, expected %d", heard[afcache.Cleared].Load(), entries)
	}
}

func TestGetOrInsertComputesOncePerKey(t *testing.T) {
	c := newCache(t, afcache.Options{MaxEntries: 4096})
	const keys = 200
	var computed [keys]atomic.Int32
	var wrong atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < keys; k++ {
				key := keyOf(uint64(k))
				v, err := c.GetOrInsert(key, func([]byte) ([]byte, error) {
					computed[k].Add(1)
					return append([]byte("computed:"), key...), nil
				})
				if err != nil || string(v) != "computed:"+string(key) {
					wrong.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if wrong.Load() != 0 {
		t.Errorf("%d wrong values", wrong.Load())
	}
	for k := range computed {
		if n := computed[k].Load(); n != 1 {
			t.Errorf("key %d computed %d times", k, n)
		}
	}
}

// Close while goroutines are calling: they see either the cache or a closed one, never freed
// memory (the race detector and the C library's own checks would catch a use after free).
func TestCloseRacesWithCalls(t *testing.T) {
	for round := 0; round < 20; round++ {
		c, err := afcache.New(afcache.Options{MaxEntries: 64, OnEvict: func(_, _ []byte, _ afcache.Cause) {}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				<-start
				for i := 0; i < 200; i++ {
					key := keyOf(uint64(g*1000 + i))
					if err := c.Put(key, []byte("v")); err != nil && err != afcache.ErrClosed {
						t.Error(err)
					}
					c.Get(key)
					c.Len()
				}
			}(g)
		}
		close(start)
		c.Close()
		wg.Wait()
		if c.Len() != 0 {
			t.Errorf("a closed cache has entries")
		}
	}
}
