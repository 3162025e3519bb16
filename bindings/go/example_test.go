package afcache_test

import (
	"fmt"
	"time"

	afcache "github.com/alphaforge/alphaforge-cache/bindings/go"
)

func Example() {
	cache, err := afcache.New(afcache.Options{
		MaxEntries:  100_000,     // at most 100k entries
		MaxBytes:    256 << 20,   // and 256 MiB of keys + values
		DefaultTTL:  time.Minute, // entries expire 60 s after their put
		ManualClock: true,        // simulated time (default: monotonic)
		OnEvict: func(key, value []byte, cause afcache.Cause) {
			fmt.Printf("%s left: %s\n", key, cause)
		},
	})
	if err != nil {
		panic(err)
	}
	defer cache.Close() // frees it now (a finalizer would, later)

	cache.Put([]byte("bar:AAPL:1m:0930"), []byte("189.70,190.10,189.55,189.98"))
	cache.PutTTL([]byte("quote:AAPL"), []byte("189.97/189.99"), 500*time.Millisecond)
	bar, ok := cache.Get([]byte("bar:AAPL:1m:0930")) // a copy, or nil and false
	fmt.Println(string(bar), ok)
	buf := make([]byte, 0, 64) // reused: no allocation per get
	buf, _ = cache.AppendValue(buf[:0], []byte("quote:AAPL"))
	fmt.Println(string(buf))
	many := cache.GetMany([][]byte{[]byte("quote:AAPL"), []byte("quote:MSFT")}) // nil for a miss
	fmt.Println(len(many), many[1] == nil)
	cache.Advance(time.Second) // quote:AAPL has now expired
	cache.Remove([]byte("bar:AAPL:1m:0930"))
	if err := cache.Resize(0); err != nil { // errors are *afcache.Error values
		fmt.Println(err)
	}
	s := cache.Stats() // reclaims expired entries first: the listener hears quote:AAPL
	fmt.Println(s.Hits, "hits,", s.Misses, "misses, ratio", s.HitRatio())
	fmt.Println("quote:AAPL live:", cache.Contains([]byte("quote:AAPL")))
	// Output:
	// 189.70,190.10,189.55,189.98 true
	// 189.97/189.99
	// 2 true
	// bar:AAPL:1m:0930 left: removed
	// afcache: AFC_INVALID_ARGUMENT: max_entries must be between 1 and 4294967294 (got 0)
	// quote:AAPL left: expired
	// 3 hits, 1 misses, ratio 0.75
	// quote:AAPL live: false
}
