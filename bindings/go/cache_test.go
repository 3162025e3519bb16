package afcache_test

// Tests of the Go binding itself: errors, buffers, Close and the finalizer, the listener's panics
// and re-entrancy, GetOrInsert, batches, clocks. The behaviour every binding shares is in
// cases_test.go.

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	afcache "github.com/alphaforge/alphaforge-cache/bindings/go"
)

func newCache(t *testing.T, opts afcache.Options) *afcache.Cache {
	t.Helper()
	c, err := afcache.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func status(err error) afcache.Status {
	var e *afcache.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return -1
}

func TestErrors(t *testing.T) {
	if _, err := afcache.New(afcache.Options{}); status(err) != afcache.StatusInvalidConfig {
		t.Errorf("zero MaxEntries: %v", err)
	}
	_, err := afcache.New(afcache.Options{MaxEntries: 4, Shards: 5})
	if status(err) != afcache.StatusInvalidConfig || !strings.Contains(err.Error(), "shard") {
		t.Errorf("too many shards: %v", err)
	}
	if _, err := afcache.New(afcache.Options{MaxEntries: 4, DefaultTTL: -1}); status(err) != afcache.StatusInvalidConfig {
		t.Errorf("negative TTL: %v", err)
	}
	c := newCache(t, afcache.Options{MaxEntries: 4, MaxBytes: 8})
	if err := c.Put([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	err = c.Put([]byte("a"), []byte("123456789"))
	if status(err) != afcache.StatusEntryTooHeavy || !strings.Contains(err.Error(), "AFC_ENTRY_TOO_HEAVY") {
		t.Errorf("too heavy: %v", err)
	}
	if v, _ := c.Get([]byte("a")); string(v) != "1" {
		t.Errorf("the older value is gone: %q", v)
	}
	if err := c.PutTTL([]byte("b"), []byte("1"), 0); status(err) != afcache.StatusInvalidArgument {
		t.Errorf("zero TTL: %v", err)
	}
	if err := c.Resize(0); status(err) != afcache.StatusInvalidArgument {
		t.Errorf("resize 0: %v", err)
	}
	if err := c.Advance(time.Second); status(err) != afcache.StatusNotManualClock {
		t.Errorf("advance on a monotonic clock: %v", err)
	}
	if afcache.StatusEntryTooHeavy.String() != "AFC_ENTRY_TOO_HEAVY" {
		t.Errorf("status name %q", afcache.StatusEntryTooHeavy.String())
	}
}

func TestBuffers(t *testing.T) {
	c := newCache(t, afcache.Options{MaxEntries: 16})
	big := bytes.Repeat([]byte("x"), 100000)
	c.Put([]byte("big"), big)
	c.Put([]byte("small"), []byte("s"))
	c.Put([]byte("empty"), nil)
	buf := make([]byte, 0, 128)
	buf, ok := c.AppendValue(buf[:0], []byte("small"))
	if !ok || string(buf) != "s" {
		t.Fatalf("AppendValue: %q %v", buf, ok)
	}
	first := &buf[:1][0]
	buf, _ = c.AppendValue(buf[:0], []byte("small"))
	if &buf[:1][0] != first {
		t.Errorf("AppendValue reallocated a buffer large enough")
	}
	prefixed, ok := c.AppendValue([]byte("v="), []byte("small"))
	if !ok || string(prefixed) != "v=s" {
		t.Errorf("AppendValue does not append: %q", prefixed)
	}
	got, ok := c.AppendValue(buf[:0], []byte("big"))
	if !ok || !bytes.Equal(got, big) {
		t.Errorf("a value longer than the buffer: %d bytes, %v", len(got), ok)
	}
	if s := c.Stats(); s.Hits != 4 {
		t.Errorf("a value that did not fit counted %d hits, expected 4", s.Hits)
	}
	if v, ok := c.Get([]byte("empty")); !ok || v == nil || len(v) != 0 {
		t.Errorf("an empty value: %v %v", v, ok)
	}
	if v, ok := c.Get([]byte("nope")); ok || v != nil {
		t.Errorf("a miss: %v %v", v, ok)
	}
	// Get's result is the caller's: appending to it must not touch the cache or other results.
	v1, _ := c.Get([]byte("small"))
	v2, _ := c.Get([]byte("small"))
	_ = append(v1, 'z')
	if string(v2) != "s" {
		t.Errorf("results share memory")
	}
	small := []byte("small")
	if allocs := testing.AllocsPerRun(100, func() { buf, _ = c.AppendValue(buf[:0], small) }); allocs != 0 {
		t.Errorf("AppendValue with a large enough buffer allocates %v times", allocs)
	}
}

func TestCloseIsSafe(t *testing.T) {
	var cleared atomic.Int64
	c, err := afcache.New(afcache.Options{MaxEntries: 8, OnEvict: func(_, _ []byte, cause afcache.Cause) {
		if cause == afcache.Cleared {
			cleared.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	c.Put([]byte("a"), []byte("1"))
	c.Put([]byte("b"), []byte("2"))
	done := make(chan struct{})
	for i := 0; i < 4; i++ {
		go func() { c.Close(); done <- struct{}{} }()
	}
	for i := 0; i < 4; i++ {
		<-done
	}
	if cleared.Load() != 2 {
		t.Errorf("close reported %d entries, expected 2", cleared.Load())
	}
	if err := c.Put([]byte("a"), []byte("1")); !errors.Is(err, afcache.ErrClosed) {
		t.Errorf("put after close: %v", err)
	}
	if _, ok := c.Get([]byte("a")); ok || c.Len() != 0 || c.Contains([]byte("a")) {
		t.Errorf("a closed cache is not empty")
	}
	if c.GetMany([][]byte{[]byte("a")})[0] != nil || c.Keys() != nil || c.Stats() != (afcache.Stats{}) {
		t.Errorf("a closed cache is not empty")
	}
	if _, err := c.GetOrInsert([]byte("a"), nil); !errors.Is(err, afcache.ErrClosed) {
		t.Errorf("GetOrInsert after close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("closing again: %v", err)
	}
}

// A cache dropped without Close is freed by its finalizer, whose listener hears its entries.
func TestFinalizerFreesAnUnreachableCache(t *testing.T) {
	var cleared atomic.Int64
	func() {
		c, err := afcache.New(afcache.Options{MaxEntries: 8, OnEvict: func(_, _ []byte, cause afcache.Cause) {
			if cause == afcache.Cleared {
				cleared.Add(1)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		c.Put([]byte("a"), []byte("1"))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for cleared.Load() == 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if cleared.Load() != 1 {
		t.Errorf("the finalizer did not free the cache (cleared %d)", cleared.Load())
	}
}

func TestListenerPanicIsRaisedAfterEveryNotification(t *testing.T) {
	var heard []string
	armed := true
	c := newCache(t, afcache.Options{MaxEntries: 4, Shards: 1, OnEvict: func(key, _ []byte, cause afcache.Cause) {
		heard = append(heard, string(key))
		if armed && cause == afcache.Cleared {
			panic("listener failed on " + string(key))
		}
	}})
	c.Put([]byte("a"), []byte("1"))
	c.Put([]byte("b"), []byte("2"))
	func() {
		defer func() {
			p, ok := recover().(*afcache.ListenerPanic)
			if !ok {
				t.Fatalf("Clear did not panic with a *ListenerPanic")
			}
			if len(heard) != 2 || p.Value != "listener failed on "+heard[0] {
				t.Errorf("heard %v, panic %v", heard, p.Value)
			}
			if !strings.Contains(p.Error(), "listener failed") || len(p.Stack) == 0 {
				t.Errorf("the panic says too little: %v", p)
			}
		}()
		c.Clear()
	}()
	armed = false
	// The cache is consistent, and the next call does not panic again.
	if c.Len() != 0 {
		t.Errorf("len %d", c.Len())
	}
	c.Put([]byte("c"), []byte("3"))
	if v, ok := c.Get([]byte("c")); !ok || string(v) != "3" {
		t.Errorf("get after a listener panic: %q %v", v, ok)
	}
}

func TestListenerMayCallTheCache(t *testing.T) {
	var c *afcache.Cache
	var seen []string
	c = newCache(t, afcache.Options{MaxEntries: 1, OnEvict: func(key, value []byte, cause afcache.Cause) {
		if cause != afcache.Cleared {
			seen = append(seen, fmt.Sprintf("%s=%s %s len=%d", key, value, cause, c.Len()))
		}
	}})
	c.Put([]byte("a"), []byte("1"))
	c.Put([]byte("b"), []byte("2"))
	c.Put([]byte("b"), []byte("3"))
	want := []string{"a=1 evicted len=1", "b=2 replaced len=1"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("heard %v, expected %v", seen, want)
	}
}

func TestGetOrInsert(t *testing.T) {
	c := newCache(t, afcache.Options{MaxEntries: 8})
	computed := 0
	compute := func(key []byte) ([]byte, error) {
		computed++
		return append([]byte("v:"), key...), nil
	}
	for i := 0; i < 3; i++ {
		v, err := c.GetOrInsert([]byte("k"), compute)
		if err != nil || string(v) != "v:k" {
			t.Fatalf("GetOrInsert: %q %v", v, err)
		}
	}
	if computed != 1 {
		t.Errorf("computed %d times", computed)
	}
	big := bytes.Repeat([]byte("b"), 5000)
	v, err := c.GetOrInsert([]byte("big"), func([]byte) ([]byte, error) { return big, nil })
	if err != nil || !bytes.Equal(v, big) {
		t.Errorf("a long value: %d bytes, %v", len(v), err)
	}
	failure := errors.New("cannot compute")
	if _, err := c.GetOrInsert([]byte("bad"), func([]byte) ([]byte, error) { return nil, failure }); !errors.Is(err, failure) {
		t.Errorf("the compute error is lost: %v", err)
	}
	_, err = c.GetOrInsert([]byte("bad"), func([]byte) ([]byte, error) { panic("boom") })
	var p *afcache.ComputePanic
	if !errors.As(err, &p) || p.Value != "boom" {
		t.Errorf("a panicking compute: %v", err)
	}
	if c.Contains([]byte("bad")) {
		t.Errorf("a failed computation stored a value")
	}
}

func TestBatches(t *testing.T) {
	c := newCache(t, afcache.Options{MaxEntries: 16, Shards: 1, ManualClock: true})
	big := bytes.Repeat([]byte("z"), 10000)
	err := c.PutMany([]afcache.Item{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: big},
		{Key: []byte("c"), Value: nil}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := c.GetMany([][]byte{[]byte("a"), []byte("x"), []byte("b"), []byte("c")})
	if string(got[0]) != "1" || got[1] != nil || !bytes.Equal(got[2], big) || got[3] == nil || len(got[3]) != 0 {
		t.Errorf("GetMany: %q", got)
	}
	// Values are capped: appending to one must not overwrite the next.
	_ = append(got[0], 'X')
	if got[3] == nil || len(got[3]) != 0 {
		t.Errorf("GetMany values share their room")
	}
	if s := c.Stats(); s.Hits != 3 || s.Misses != 1 {
		t.Errorf("stats %+v: the long value was counted twice?", s)
	}
	if err := c.PutMany([]afcache.Item{{Key: []byte("t"), Value: []byte("1")}}, 5*time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	if left, ok := c.RemainingTTL([]byte("t")); !ok || left != 5 {
		t.Errorf("ttl %v %v", left, ok)
	}
	if len(c.GetMany(nil)) != 0 || c.PutMany(nil, 0) != nil {
		t.Errorf("empty batches")
	}
}

func TestSharedManualClock(t *testing.T) {
	clock, err := afcache.NewManualClock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer clock.Close()
	a := newCache(t, afcache.Options{MaxEntries: 4, Clock: clock, DefaultTTL: time.Second})
	b := newCache(t, afcache.Options{MaxEntries: 4, Clock: clock, DefaultTTL: 2 * time.Second})
	a.Put([]byte("k"), []byte("v"))
	b.Put([]byte("k"), []byte("v"))
	clock.Advance(time.Second)
	if clock.Now() != 2*time.Second || b.Now() != 2*time.Second {
		t.Errorf("now %v %v", clock.Now(), b.Now())
	}
	if a.Contains([]byte("k")) || !b.Contains([]byte("k")) {
		t.Errorf("the clock did not move both caches")
	}
	clock.Set(0)
	if left, ok := b.RemainingTTL([]byte("k")); !ok || left != 3*time.Second {
		t.Errorf("ttl after setting the clock back: %v %v", left, ok)
	}
	if left, ok := a.RemainingTTL([]byte("zz")); ok {
		t.Errorf("ttl of a missing key: %v", left)
	}
	never := newCache(t, afcache.Options{MaxEntries: 4})
	never.Put([]byte("k"), []byte("v"))
	if left, ok := never.RemainingTTL([]byte("k")); !ok || left != afcache.NoExpiry {
		t.Errorf("never expires: %v %v", left, ok)
	}
}
