package afcache_test

// The shared cases of tests/cases/*.json (format in tests/cases/README.md), replayed through the
// Go API: one subtest per case.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	afcache "github.com/alphaforge/alphaforge-cache/bindings/go"
)

type caseFile struct {
	Cases []testCase `json:"cases"`
}

type testCase struct {
	Name        string                       `json:"name"`
	Cache       map[string]json.Number       `json:"cache"`
	CreateError string                       `json:"create_error"`
	Ops         []map[string]json.RawMessage `json:"ops"`
}

type event struct{ key, value, cause string }

var errorStatus = map[string]afcache.Status{
	"invalid_config":   afcache.StatusInvalidConfig,
	"invalid_argument": afcache.StatusInvalidArgument,
	"entry_too_heavy":  afcache.StatusEntryTooHeavy,
	"io_error":         afcache.StatusIOError,
	"snapshot_invalid": afcache.StatusSnapshotInvalid,
}

func TestCases(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "tests", "cases", "*.json"))
	if err != nil || len(files) < 5 {
		t.Fatalf("case files not found: %v %v", files, err)
	}
	count := 0
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var file caseFile
		decoder := json.NewDecoder(bytes.NewReader(data))
		decoder.UseNumber()
		if err := decoder.Decode(&file); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, c := range file.Cases {
			c := c
			count++
			t.Run(filepath.Base(path)+": "+c.Name, func(t *testing.T) { runCase(t, c) })
		}
	}
	if count < 20 {
		t.Fatalf("only %d cases", count)
	}
}

func number(t *testing.T, n json.Number) uint64 {
	v, err := n.Int64()
	if err != nil || v < 0 {
		t.Fatalf("malformed case: %q is not a non-negative integer", n)
	}
	return uint64(v)
}

func runCase(t *testing.T, c testCase) {
	var events []event
	opts := afcache.Options{
		MaxEntries:  number(t, c.Cache["max_entries"]),
		ManualClock: true,
		OnEvict: func(key, value []byte, cause afcache.Cause) {
			events = append(events, event{string(key), string(value), cause.String()})
		},
	}
	if v, ok := c.Cache["max_bytes"]; ok {
		opts.MaxBytes = number(t, v)
	}
	if v, ok := c.Cache["ttl_ns"]; ok {
		opts.DefaultTTL = time.Duration(number(t, v))
	}
	if v, ok := c.Cache["shards"]; ok {
		opts.Shards = uint32(number(t, v))
	}
	cache, err := afcache.New(opts)
	if c.CreateError != "" {
		checkError(t, "New", err, c.CreateError)
		if cache != nil {
			t.Errorf("New returned a cache with its error")
		}
		return
	}
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer cache.Close()
	dir := t.TempDir()
	for i, op := range c.Ops {
		r := replayer{t: t, cache: cache, events: &events, op: op, dir: dir, at: fmt.Sprintf("op %d %s", i, op["op"])}
		r.run()
	}
}

type replayer struct {
	t      *testing.T
	cache  *afcache.Cache
	events *[]event
	op     map[string]json.RawMessage
	dir    string // the case's temporary directory (snapshot files)
	at     string
}

// file is the path of the op's "file" in the case's directory.
func (r *replayer) file() string {
	return filepath.Join(r.dir, string(r.str("file")))
}

func (r *replayer) field(name string, into any) bool {
	raw, ok := r.op[name]
	if !ok {
		return false
	}
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	if err := decoder.Decode(into); err != nil {
		r.t.Fatalf("%s: malformed %s: %v", r.at, name, err)
	}
	return true
}

func (r *replayer) str(name string) []byte {
	var s string
	if !r.field(name, &s) {
		r.t.Fatalf("%s: no %s", r.at, name)
	}
	return []byte(s)
}

func (r *replayer) uint(name string) uint64 {
	var n json.Number
	if !r.field(name, &n) {
		r.t.Fatalf("%s: no %s", r.at, name)
	}
	return number(r.t, n)
}

// expectValue is the op's "expect" as a value: nil for null.
func (r *replayer) expectValue() *string {
	var v *string
	r.field("expect", &v)
	return v
}

func (r *replayer) errorf(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("%s: %s", r.at, fmt.Sprintf(format, args...))
}

func checkError(t *testing.T, what string, err error, name string) {
	t.Helper()
	var e *afcache.Error
	if !errors.As(err, &e) || e.Status != errorStatus[name] {
		t.Errorf("%s: got error %v, expected %s", what, err, name)
	}
}

func (r *replayer) checkValue(got []byte, ok bool) {
	want := r.expectValue()
	switch {
	case want == nil && ok:
		r.errorf("got %q, expected a miss", got)
	case want != nil && (!ok || string(got) != *want):
		r.errorf("got %q (hit: %v), expected %q", got, ok, *want)
	}
}

func (r *replayer) run() {
	var name string
	r.field("op", &name)
	var errName string
	r.field("error", &errName)
	err := r.perform(name)
	if errName != "" {
		checkError(r.t, r.at, err, errName)
	} else if err != nil {
		r.errorf("unexpected error %v", err)
	}
}

func (r *replayer) ttl() time.Duration {
	var ns json.Number
	if r.field("ttl_ns", &ns) {
		return time.Duration(number(r.t, ns))
	}
	return 0
}

func (r *replayer) perform(name string) error {
	c := r.cache
	switch name {
	case "put":
		if ttl := r.ttl(); ttl > 0 {
			return c.PutTTL(r.str("key"), r.str("value"), ttl)
		}
		return c.Put(r.str("key"), r.str("value"))
	case "get":
		r.checkValue(c.Get(r.str("key")))
	case "peek":
		r.checkValue(c.Peek(r.str("key")))
	case "contains", "remove":
		var want bool
		r.field("expect", &want)
		got := false
		if name == "contains" {
			got = c.Contains(r.str("key"))
		} else {
			got = c.Remove(r.str("key"))
		}
		if got != want {
			r.errorf("got %v", got)
		}
	case "len", "weight", "expire":
		var got uint64
		switch name {
		case "len":
			got = uint64(c.Len())
		case "weight":
			got = c.Weight()
		default:
			got = uint64(c.Expire())
		}
		if want := r.uint("expect"); got != want {
			r.errorf("got %d, expected %d", got, want)
		}
	case "keys":
		var want []string
		r.field("expect", &want)
		got := []string{}
		for _, k := range c.Keys() {
			got = append(got, string(k))
		}
		if !reflect.DeepEqual(got, append([]string{}, want...)) {
			r.errorf("got %q, expected %q", got, want)
		}
	case "ttl":
		var want any
		r.field("expect", &want)
		left, ok := c.RemainingTTL(r.str("key"))
		switch w := want.(type) {
		case nil:
			if ok {
				r.errorf("got %v, expected no entry", left)
			}
		case string: // "never"
			if !ok || left != afcache.NoExpiry {
				r.errorf("got %v (%v), expected never", left, ok)
			}
		case json.Number:
			if !ok || uint64(left) != number(r.t, w) {
				r.errorf("got %v (%v), expected %s ns", left, ok, w)
			}
		}
	case "advance":
		return c.Advance(time.Duration(r.uint("ns")))
	case "set_clock":
		return c.SetTime(time.Duration(r.uint("ns")))
	case "stats":
		var want map[string]json.Number
		r.field("expect", &want)
		s := c.Stats()
		got := map[string]uint64{"hits": s.Hits, "misses": s.Misses, "inserts": s.Inserts,
			"updates": s.Updates, "evictions": s.Evictions, "expirations": s.Expirations,
			"removals": s.Removals, "entries": s.Entries, "weight": s.Weight}
		for field, w := range want {
			if field == "hit_ratio" {
				f, _ := w.Float64()
				if math.Abs(s.HitRatio()-f) > 1e-12 {
					r.errorf("hit_ratio %v, expected %v", s.HitRatio(), f)
				}
				continue
			}
			g, known := got[field]
			if !known {
				r.t.Fatalf("%s: unknown statistic %s", r.at, field)
			}
			if g != number(r.t, w) {
				r.errorf("%s = %d, expected %s", field, g, w)
			}
		}
	case "reset_stats":
		c.ResetStats()
	case "get_many":
		var keys []string
		var want []*string
		r.field("keys", &keys)
		r.field("expect", &want)
		in := make([][]byte, len(keys))
		for i, k := range keys {
			in[i] = []byte(k)
		}
		got := c.GetMany(in)
		if len(got) != len(want) {
			r.errorf("%d values, expected %d", len(got), len(want))
			return nil
		}
		for i := range got {
			if (want[i] == nil) != (got[i] == nil) || (want[i] != nil && string(got[i]) != *want[i]) {
				r.errorf("value %d is %q, expected %v", i, got[i], want[i])
			}
		}
	case "put_many":
		var pairs [][2]string
		r.field("items", &pairs)
		items := make([]afcache.Item, len(pairs))
		for i, p := range pairs {
			items[i] = afcache.Item{Key: []byte(p[0]), Value: []byte(p[1])}
		}
		return c.PutMany(items, r.ttl())
	case "clear":
		c.Clear()
	case "resize":
		return c.Resize(r.uint("max_entries"))
	case "events":
		var raw [][3]string
		var unordered bool
		r.field("expect", &raw)
		r.field("unordered", &unordered)
		want := []event{}
		for _, e := range raw {
			want = append(want, event{e[0], e[1], e[2]})
		}
		got := append([]event{}, *r.events...)
		*r.events = nil
		if unordered {
			less := func(s []event) func(i, j int) bool {
				return func(i, j int) bool { return s[i].key+"\x00"+s[i].value < s[j].key+"\x00"+s[j].value }
			}
			sort.Slice(got, less(got))
			sort.Slice(want, less(want))
		}
		if !reflect.DeepEqual(got, want) {
			r.errorf("heard %v, expected %v", got, want)
		}
	case "close":
		return c.Close()
	case "save":
		return c.Save(r.file())
	case "load":
		return c.Load(r.file())
	case "write_file":
		if err := os.WriteFile(r.file(), r.str("content"), 0o600); err != nil {
			r.t.Fatalf("%s: %v", r.at, err)
		}
	case "truncate":
		if err := os.Truncate(r.file(), int64(r.uint("bytes"))); err != nil {
			r.t.Fatalf("%s: %v", r.at, err)
		}
	default:
		r.t.Fatalf("%s: unknown operation %s", r.at, name)
	}
	return nil
}
