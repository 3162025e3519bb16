package afcache_test

// The per-call cost of a get hit through the Go binding, on the workload of benches/c/bench.c:
// 100,000 entries (default shards), 16-byte keys, 64-byte values, the same SplitMix64 key sets.
//
//	go test -run '^$' -bench GetHit -count 5

import (
	"encoding/binary"
	"testing"

	afcache "github.com/alphaforge/alphaforge-cache/bindings/go"
)

const benchCapacity = 100_000

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// benchKeys are the keys of ids start..end of benches/rust/src/lib.rs, shuffled with seed.
func benchKeys(start, end, seed uint64) [][]byte {
	ids := make([]uint64, 0, end-start)
	for i := start; i < end; i++ {
		ids = append(ids, i)
	}
	state := seed
	for i := len(ids) - 1; i >= 1; i-- {
		state += 0x9E3779B97F4A7C15
		j := int(mix(state) % uint64(i+1))
		ids[i], ids[j] = ids[j], ids[i]
	}
	keys := make([][]byte, len(ids))
	for i, id := range ids {
		k := make([]byte, 16)
		binary.LittleEndian.PutUint64(k, mix(id^0x5DEECE66D1CE4E5B))
		binary.LittleEndian.PutUint64(k[8:], id)
		keys[i] = k
	}
	return keys
}

// filledCache is a cache holding the benchmark's keys, and the keys still resident.
func filledCache(b *testing.B) (*afcache.Cache, [][]byte) {
	c, err := afcache.New(afcache.Options{MaxEntries: benchCapacity})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	value := make([]byte, 64)
	for i := range value {
		value[i] = 0xA5
	}
	keys := benchKeys(0, benchCapacity, 1)
	for _, k := range keys {
		if err := c.Put(k, value); err != nil {
			b.Fatal(err)
		}
	}
	resident := keys[:0]
	for _, k := range keys {
		if c.Contains(k) {
			resident = append(resident, k)
		}
	}
	return c, resident
}

// BenchmarkGetHit: AppendValue into a reused buffer (no allocation).
func BenchmarkGetHit(b *testing.B) {
	c, keys := filledCache(b)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i, j := 0, 0; i < b.N; i++ {
		var ok bool
		if buf, ok = c.AppendValue(buf[:0], keys[j]); !ok {
			b.Fatal("miss")
		}
		if j++; j == len(keys) {
			j = 0
		}
	}
}

// BenchmarkGetHitAlloc: Get, which returns a new copy of the value.
func BenchmarkGetHitAlloc(b *testing.B) {
	c, keys := filledCache(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i, j := 0, 0; i < b.N; i++ {
		if _, ok := c.Get(keys[j]); !ok {
			b.Fatal("miss")
		}
		if j++; j == len(keys) {
			j = 0
		}
	}
}

// BenchmarkGetMany16: GetMany of 16 resident keys per call; ns/op is per key.
func BenchmarkGetMany16(b *testing.B) {
	c, keys := filledCache(b)
	batch := make([][]byte, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i, j := 0, 0; i < b.N; i += 16 {
		if j+16 > len(keys) {
			j = 0
		}
		copy(batch, keys[j:j+16])
		for _, v := range c.GetMany(batch) {
			if v == nil {
				b.Fatal("miss")
			}
		}
		j += 16
	}
}
