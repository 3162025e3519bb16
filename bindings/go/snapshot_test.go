package afcache_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	afcache "github.com/alphaforge/alphaforge-cache/bindings/go"
)

func keyStrings(c *afcache.Cache) []string {
	var out []string
	for _, k := range c.Keys() {
		out = append(out, string(k))
	}
	return out
}

func TestSnapshotRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snap.afcs")
	src := newCache(t, afcache.Options{MaxEntries: 8, Shards: 1, ManualClock: true})
	if err := src.PutTTL([]byte("a"), []byte("1"), 1000); err != nil {
		t.Fatal(err)
	}
	src.Put([]byte("b"), []byte("2\x00x"))
	src.PutTTL([]byte("c"), []byte("3"), 500)
	src.Get([]byte("a"))
	src.Advance(100)
	if err := src.Save(path); err != nil {
		t.Fatalf("Save: %v", err)
	}
	info, err := afcache.VerifySnapshot(path)
	if err != nil || info.Entries != 3 || info.ValueEncoding != 0 || info.FileBytes == 0 {
		t.Fatalf("VerifySnapshot: %+v, %v", info, err)
	}

	var heard []string
	dst := newCache(t, afcache.Options{MaxEntries: 8, Shards: 1, ManualClock: true,
		OnEvict: func(key, value []byte, cause afcache.Cause) {
			heard = append(heard, string(key)+"="+string(value)+" "+cause.String())
		}})
	dst.Advance(5000)
	dst.Put([]byte("old"), []byte("x"))
	if err := dst.Load(path); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(heard, []string{"old=x cleared"}) {
		t.Errorf("listener heard %v", heard)
	}
	if got := keyStrings(dst); !reflect.DeepEqual(got, []string{"a", "c", "b"}) {
		t.Errorf("keys %v, want [a c b]", got)
	}
	if v, ok := dst.Get([]byte("b")); !ok || string(v) != "2\x00x" {
		t.Errorf("b = %q, %v", v, ok)
	}
	for key, want := range map[string]time.Duration{"a": 900, "c": 400, "b": afcache.NoExpiry} {
		if got, ok := dst.RemainingTTL([]byte(key)); !ok || got != want {
			t.Errorf("ttl %s = %v, %v; want %v", key, got, ok, want)
		}
	}
	dst.Advance(400)
	if dst.Contains([]byte("c")) || !dst.Contains([]byte("a")) {
		t.Errorf("after 400ns: c should have expired, a not")
	}
}

func TestSnapshotCorruptFileLeavesCacheUnchanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "snap.afcs")
	c := newCache(t, afcache.Options{MaxEntries: 8, Shards: 1, ManualClock: true})
	c.Put([]byte("a"), []byte("1"))
	c.PutTTL([]byte("b"), []byte("2"), 50)
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-6] ^= 0x55 // inside the last entry: its checksum no longer matches
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c.Put([]byte("c"), []byte("3"))
	if err := c.Load(path); status(err) != afcache.StatusSnapshotInvalid {
		t.Errorf("Load(corrupt) = %v, want StatusSnapshotInvalid", err)
	}
	if _, err := afcache.VerifySnapshot(path); status(err) != afcache.StatusSnapshotInvalid {
		t.Errorf("VerifySnapshot(corrupt) = %v", err)
	}
	if err := c.Load(filepath.Join(dir, "missing.afcs")); status(err) != afcache.StatusIOError {
		t.Errorf("Load(missing) = %v, want StatusIOError", err)
	}
	if err := c.Save(filepath.Join(dir, "no", "dir.afcs")); status(err) != afcache.StatusIOError {
		t.Errorf("Save(no dir) = %v, want StatusIOError", err)
	}
	if got := keyStrings(c); !reflect.DeepEqual(got, []string{"c", "b", "a"}) {
		t.Errorf("keys %v, want [c b a]", got)
	}
	if got, ok := c.RemainingTTL([]byte("b")); !ok || got != 50 {
		t.Errorf("ttl b = %v, %v", got, ok)
	}
	c.Close()
	if err := c.Save(path); err != afcache.ErrClosed {
		t.Errorf("Save after Close = %v, want ErrClosed", err)
	}
	if err := c.Load(path); err != afcache.ErrClosed {
		t.Errorf("Load after Close = %v, want ErrClosed", err)
	}
}
