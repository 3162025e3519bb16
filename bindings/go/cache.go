// Package afcache is the Go binding of alphaforge-cache, a thread-safe in-process LRU/TTL cache of
// byte strings: bounds on entries and bytes, default and per-entry TTLs, a manual clock for tests
// and backtests, statistics, batches and an eviction listener. It calls the engine's C ABI through
// cgo and links its static library (build it first: cargo build --release -p alphaforge-cache).
//
// Every method may be called from any number of goroutines at once. Keys and values are byte
// slices; the cache copies what it is given and returns copies, so callers may reuse their slices.
package afcache

/*
#include "afcgo.h"
*/
import "C"

import (
	"errors"
	"math"
	"runtime"
	"runtime/cgo"
	"sync/atomic"
	"time"
	"unsafe"
)

// NoExpiry is the remaining TTL of an entry that never expires.
const NoExpiry = time.Duration(math.MaxInt64)

// ErrClosed is returned by the methods of a closed Cache that return an error. Methods without
// an error result treat a closed cache as empty (Get misses, Len is 0).
var ErrClosed = errors.New("afcache: cache is closed")

// Cause says why an entry left the cache, as the listener hears it.
type Cause int

const (
	Evicted  Cause = C.AFC_CAUSE_EVICTED  // removed to respect a bound
	Expired  Cause = C.AFC_CAUSE_EXPIRED  // its deadline passed
	Removed  Cause = C.AFC_CAUSE_REMOVED  // removed by Remove
	Replaced Cause = C.AFC_CAUSE_REPLACED // replaced by a put of the same key (the old value is told)
	Cleared  Cause = C.AFC_CAUSE_CLEARED  // removed by Clear or Close
)

// String gives the cause's lower-case name ("evicted", "expired", "removed", "replaced",
// "cleared").
func (c Cause) String() string {
	switch c {
	case Evicted:
		return "evicted"
	case Expired:
		return "expired"
	case Removed:
		return "removed"
	case Replaced:
		return "replaced"
	case Cleared:
		return "cleared"
	}
	return "unknown"
}

// Stats are a cache's statistics at one moment (docs/semantics.md says what each counts).
type Stats struct {
	Hits        uint64 // gets that found a live entry
	Misses      uint64 // gets that found nothing
	Inserts     uint64 // puts that added a new key
	Updates     uint64 // puts that replaced a live key's value
	Evictions   uint64 // entries removed to respect a bound
	Expirations uint64 // expired entries reclaimed
	Removals    uint64 // entries removed by Remove or Clear
	Entries     uint64 // live entries
	Weight      uint64 // total weight of the live entries
}

// HitRatio is Hits / (Hits + Misses), or 0 when both are 0.
func (s Stats) HitRatio() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// Options configure a cache. The zero value of each optional field means "not set".
type Options struct {
	MaxEntries uint64        // at most this many entries (required, >= 1)
	MaxBytes   uint64        // bound on the total weight, key + value bytes per entry (0: none)
	DefaultTTL time.Duration // time to live of entries put without one (0: they never expire)
	Shards     uint32        // shard count, 1 for exact global LRU order (0: the engine's default)
	// ManualClock gives the cache a manual clock of its own, starting at 0, moved only by
	// Cache.SetTime and Cache.Advance (tests, backtests on simulated time).
	ManualClock bool
	// Clock gives the cache a shared manual clock instead (several caches may share one).
	Clock *ManualClock
	// OnEvict, if set, is told of every entry that leaves the cache, after the cache's locks are
	// released (it may call the cache, but not Close it: Close would wait for the call running
	// the listener, forever), on the goroutine whose call made the entry leave. key and value
	// are its own copies. If it panics, the panic is recovered at the C boundary (a panic must
	// not unwind through C frames), the remaining notifications still happen, and the first
	// panic is kept for the cache: the cache method that caused it panics with a *ListenerPanic
	// once it is done, unless a method finishing at the same moment on another goroutine takes
	// it first. A listener that refers to its cache keeps it reachable: Close such a cache
	// explicitly.
	OnEvict func(key, value []byte, cause Cause)
}

// Item is a key and its value, for PutMany.
type Item struct {
	Key, Value []byte
}

// Cache is a thread-safe LRU/TTL cache of byte strings. Create it with New; Close it when done
// (a finalizer closes a cache that becomes unreachable, but only Close is prompt).
type Cache struct {
	ptr C.afcgo_cache // the C handle (0 once closed)
	// state counts the calls in flight; closedBit marks a closed (or closing) cache.
	state    atomic.Int64
	listener *listener
	handle   cgo.Handle     // the listener's handle (0 without one)
	box      unsafe.Pointer // C memory holding the handle: the listener's user_data
	closing  atomic.Bool    // Close has started
	done     chan struct{}  // closed when Close has finished
}

const closedBit = int64(1) << 62

// New builds a cache. It returns an *Error (StatusInvalidConfig) when the options are refused.
func New(opts Options) (*Cache, error) {
	if opts.DefaultTTL < 0 {
		return nil, &Error{Status: StatusInvalidConfig, Message: "DefaultTTL must not be negative"}
	}
	r := C.afcgo_config_new(C.uint64_t(opts.MaxEntries))
	if err := resultError(r); err != nil {
		return nil, err
	}
	config := (*C.afc_config)(r.ptr)
	defer C.afc_config_free(config)
	if opts.MaxBytes > 0 {
		C.afc_config_set_max_bytes(config, C.uint64_t(opts.MaxBytes))
	}
	if opts.DefaultTTL > 0 {
		C.afc_config_set_default_ttl_ns(config, C.uint64_t(opts.DefaultTTL))
	}
	if opts.Shards > 0 {
		C.afc_config_set_shards(config, C.uint32_t(opts.Shards))
	}
	if opts.ManualClock {
		C.afc_config_use_manual_clock(config, 0)
	}
	if opts.Clock != nil {
		if err := opts.Clock.use(config); err != nil {
			return nil, err
		}
	}
	c := &Cache{done: make(chan struct{})}
	if opts.OnEvict != nil {
		c.listener = &listener{fn: opts.OnEvict}
		c.handle = cgo.NewHandle(c.listener)
		c.box = C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
		*(*C.uintptr_t)(c.box) = C.uintptr_t(c.handle)
		C.afc_config_set_listener(config, C.afc_listener_fn(C.afcgo_listener), c.box)
	}
	r = C.afcgo_cache_new(config)
	if err := resultError(r); err != nil {
		c.freeListener()
		return nil, err
	}
	c.ptr = C.afcgo_cache(r.n)
	runtime.SetFinalizer(c, (*Cache).finalize)
	return c, nil
}

func (c *Cache) finalize() {
	// Unreachable: no call can be in flight. The listener hears the entries left as cleared;
	// a panic of it has nobody to reach any more.
	c.closeNow(false)
}

// enter registers a call in flight; false if the cache is closed.
func (c *Cache) enter() bool {
	if c.state.Add(1)&closedBit != 0 {
		c.state.Add(-1)
		return false
	}
	return true
}

// exit ends a call begun with enter, then re-raises a panic of the listener during it.
func (c *Cache) exit() {
	c.state.Add(-1)
	if c.listener != nil {
		c.listener.repanic()
	}
}

// Close frees the cache: the listener hears every remaining entry as cleared. It waits for
// calls in flight on other goroutines; later calls see a closed cache (ErrClosed, or misses).
// Closing twice, or from several goroutines, is harmless. Do not call it from the listener.
func (c *Cache) Close() error {
	if !c.closing.CompareAndSwap(false, true) {
		<-c.done
		return nil
	}
	runtime.SetFinalizer(c, nil)
	// Refuse new calls, then wait for those in flight.
	for {
		s := c.state.Load()
		if c.state.CompareAndSwap(s, s|closedBit) {
			break
		}
	}
	for spins := 0; c.state.Load() != closedBit; spins++ {
		if spins < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(50 * time.Microsecond)
		}
	}
	c.closeNow(true)
	return nil
}

// closeNow frees the C cache and the listener's handle (no call may be in flight), then
// re-raises a panic of the listener if asked to.
func (c *Cache) closeNow(repanic bool) {
	defer close(c.done)
	C.afcgo_cache_free(c.ptr)
	c.ptr = 0
	l := c.listener
	c.freeListener()
	if l != nil {
		if repanic {
			l.repanic()
		} else {
			l.panicked.Store(nil)
		}
	}
}

func (c *Cache) freeListener() {
	if c.box != nil {
		C.free(c.box)
		c.box = nil
		c.handle.Delete()
	}
}

// ---- single keys -------------------------------------------------------------------------------

// bytesPtr is the C view of a slice's first byte (nil for an empty slice).
func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// minSpare is the room a read makes at the end of its buffer before the first try.
const minSpare = 64

// peek selects afc_cache_peek over afc_cache_get in read.
const (
	get  = false
	peek = true
)

// read appends the value of key to dst through fn (a get or a peek).
func (c *Cache) read(isPeek bool, dst, key []byte) ([]byte, bool) {
	if !c.enter() {
		return dst, false
	}
	defer c.exit()
	start := len(dst)
	if cap(dst)-start < minSpare {
		grown := make([]byte, start, start+minSpare)
		copy(grown, dst)
		dst = grown
	}
	buf := dst[start:cap(dst)]
	var r C.afcgo_result
	if isPeek {
		r = C.afcgo_peek(c.ptr, bytesPtr(key), C.size_t(len(key)), bytesPtr(buf), C.size_t(len(buf)))
	} else {
		r = C.afcgo_get(c.ptr, bytesPtr(key), C.size_t(len(key)), bytesPtr(buf), C.size_t(len(buf)))
	}
	switch r.status {
	case C.AFC_OK:
		return dst[:start+int(r.n)], true
	case C.AFC_NOT_FOUND:
		return dst[:start], false
	case C.AFC_BUFFER_TOO_SMALL:
		// The get counted its hit: read the value again with peeks, growing as needed.
		return c.readAgain(dst[:start], key, int(r.n))
	}
	panic(resultError(r)) // only a bug can get here (the arguments are always valid)
}

// readAgain appends the value of key, known to be about n bytes long, with peeks (no second hit
// is counted); false if a concurrent call removed it meanwhile.
func (c *Cache) readAgain(dst, key []byte, n int) ([]byte, bool) {
	start := len(dst)
	for {
		grown := make([]byte, start+n)
		copy(grown, dst)
		r := C.afcgo_peek(c.ptr, bytesPtr(key), C.size_t(len(key)), bytesPtr(grown[start:]), C.size_t(n))
		switch r.status {
		case C.AFC_OK:
			return grown[:start+int(r.n)], true
		case C.AFC_NOT_FOUND:
			return dst, false
		case C.AFC_BUFFER_TOO_SMALL:
			n = int(r.n)
		default:
			panic(resultError(r))
		}
	}
}

// Get returns a copy of the value of key and true, or nil and false on a miss; the entry
// becomes the most recently used. It allocates the copy: AppendValue reuses a buffer.
func (c *Cache) Get(key []byte) ([]byte, bool) {
	v, ok := c.read(get, nil, key)
	if !ok {
		return nil, false
	}
	return v[:len(v):len(v)], true
}

// AppendValue appends the value of key to dst and returns the extended slice and true, or dst and
// false on a miss, like Get. With a buffer reused across calls (buf, ok = c.AppendValue(buf[:0],
// key)) a hit allocates nothing.
func (c *Cache) AppendValue(dst, key []byte) ([]byte, bool) {
	return c.read(get, dst, key)
}

// Peek is Get without changing recency or the hit/miss counters.
func (c *Cache) Peek(key []byte) ([]byte, bool) {
	v, ok := c.read(peek, nil, key)
	if !ok {
		return nil, false
	}
	return v[:len(v):len(v)], true
}

// Contains reports whether key has a live entry (recency and counters unchanged).
func (c *Cache) Contains(key []byte) bool {
	if !c.enter() {
		return false
	}
	defer c.exit()
	return c.must(C.afcgo_contains(c.ptr, bytesPtr(key), C.size_t(len(key)))) != 0
}

// Put stores key -> value as the most recently used entry, with the default TTL. It returns an
// *Error with StatusEntryTooHeavy for an entry heavier than MaxBytes (the cache is unchanged).
func (c *Cache) Put(key, value []byte) error {
	return c.put(key, value, 0)
}

// PutTTL stores key -> value with its own time to live (> 0).
func (c *Cache) PutTTL(key, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return &Error{Status: StatusInvalidArgument, Message: "ttl must be positive"}
	}
	return c.put(key, value, uint64(ttl))
}

func (c *Cache) put(key, value []byte, ttlNs uint64) error {
	if !c.enter() {
		return ErrClosed
	}
	defer c.exit()
	return resultError(C.afcgo_put(c.ptr, bytesPtr(key), C.size_t(len(key)), bytesPtr(value),
		C.size_t(len(value)), C.uint64_t(ttlNs)))
}

// Remove removes key and reports whether it had a live entry.
func (c *Cache) Remove(key []byte) bool {
	if !c.enter() {
		return false
	}
	defer c.exit()
	r := C.afcgo_remove(c.ptr, bytesPtr(key), C.size_t(len(key)))
	if r.status == C.AFC_NOT_FOUND {
		return false
	}
	c.must(r)
	return true
}

// RemainingTTL returns the time key has left (NoExpiry if it never expires) and true, or false
// if it has no live entry.
func (c *Cache) RemainingTTL(key []byte) (time.Duration, bool) {
	if !c.enter() {
		return 0, false
	}
	defer c.exit()
	r := C.afcgo_remaining_ttl(c.ptr, bytesPtr(key), C.size_t(len(key)))
	if r.status == C.AFC_NOT_FOUND {
		return 0, false
	}
	return durationOf(c.must(r)), true
}

// GetOrInsert returns the value of key; on a miss, compute(key) gives it (called with no lock
// held) and it is stored. When goroutines race on one key, one computes and the others wait for
// its value. If compute returns an error (or panics: a *ComputePanic), nothing is stored and
// GetOrInsert returns that error.
func (c *Cache) GetOrInsert(key []byte, compute func(key []byte) ([]byte, error)) ([]byte, error) {
	if !c.enter() {
		return nil, ErrClosed
	}
	defer c.exit()
	call := &computeCall{fn: compute}
	handle := cgo.NewHandle(call)
	defer handle.Delete()
	// The handle travels in Go memory that holds no Go pointer, valid for the call.
	h := C.uintptr_t(handle)
	buf := make([]byte, minSpare)
	r := C.afcgo_get_or_insert(c.ptr, bytesPtr(key), C.size_t(len(key)), unsafe.Pointer(&h),
		bytesPtr(buf), C.size_t(len(buf)))
	if call.err != nil {
		if r.msg != nil {
			C.free(unsafe.Pointer(r.msg))
		}
		return nil, call.err
	}
	switch r.status {
	case C.AFC_OK:
		return buf[:r.n:r.n], nil
	case C.AFC_BUFFER_TOO_SMALL:
		if v, ok := c.readAgain(nil, key, int(r.n)); ok {
			return v, nil
		}
		// Removed between the two reads: the value computed (by us or another) is gone.
		return nil, &Error{Status: StatusNotFound, Message: "the value was removed while it was read"}
	}
	return nil, resultError(r)
}

// ---- many keys ---------------------------------------------------------------------------------

// GetMany returns the values of keys in one call (one lock per shard), in order: a copy of each
// hit's value, nil for a miss (an empty value is an empty, non-nil slice).
func (c *Cache) GetMany(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	if len(keys) == 0 || !c.enter() {
		return out
	}
	defer c.exit()
	flat, lens := flatten(keys)
	values := make([]byte, minSpare*len(keys))
	offsets := make([]C.size_t, len(keys))
	valueLens := make([]C.size_t, len(keys))
	r := C.afcgo_get_many(c.ptr, bytesPtr(flat), &lens[0], C.size_t(len(keys)),
		bytesPtr(values), C.size_t(len(values)), &offsets[0], &valueLens[0])
	if r.status != C.AFC_OK && r.status != C.AFC_BUFFER_TOO_SMALL {
		panic(resultError(r))
	}
	for i := range keys {
		switch {
		case offsets[i] != C.AFC_MISSING:
			off, n := int(offsets[i]), int(valueLens[i])
			out[i] = values[off : off+n : off+n]
		case valueLens[i] != C.AFC_MISSING:
			// A hit that did not fit: read it again without counting a second hit.
			if v, ok := c.readAgain(nil, keys[i], int(valueLens[i])); ok {
				out[i] = v
			}
		}
	}
	return out
}

// PutMany stores every item in one call, all or none (one refused entry refuses the batch), with
// the default TTL (ttl 0) or ttl.
func (c *Cache) PutMany(items []Item, ttl time.Duration) error {
	if ttl < 0 {
		return &Error{Status: StatusInvalidArgument, Message: "ttl must not be negative"}
	}
	if len(items) == 0 {
		return nil
	}
	if !c.enter() {
		return ErrClosed
	}
	defer c.exit()
	keys := make([][]byte, len(items))
	values := make([][]byte, len(items))
	for i, item := range items {
		keys[i], values[i] = item.Key, item.Value
	}
	flatKeys, keyLens := flatten(keys)
	flatValues, valueLens := flatten(values)
	return resultError(C.afcgo_put_many(c.ptr, bytesPtr(flatKeys), &keyLens[0], bytesPtr(flatValues),
		&valueLens[0], C.size_t(len(items)), C.uint64_t(ttl)))
}

// flatten concatenates parts and lists their lengths (the C ABI's batch form).
func flatten(parts [][]byte) ([]byte, []C.size_t) {
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	flat := make([]byte, 0, total)
	lens := make([]C.size_t, len(parts))
	for i, p := range parts {
		flat = append(flat, p...)
		lens[i] = C.size_t(len(p))
	}
	return flat, lens
}

// Keys returns the keys of a consistent snapshot, most recently used first (each shard's in turn
// when there are several); recency is unchanged.
func (c *Cache) Keys() [][]byte {
	if !c.enter() {
		return nil
	}
	defer c.exit()
	r := C.afcgo_iter_new(c.ptr)
	c.must(r)
	iter := (*C.afc_iter)(r.ptr)
	defer C.afc_iter_free(iter)
	var keys [][]byte
	for {
		next := C.afcgo_iter_next_key(iter)
		if next.status != C.AFC_OK {
			return keys
		}
		keys = append(keys, goBytes((*C.uint8_t)(next.ptr), C.size_t(next.n)))
	}
}

// ---- the whole cache ---------------------------------------------------------------------------

// Clear removes every entry (the listener hears them as cleared, or expired).
func (c *Cache) Clear() {
	if c.enter() {
		defer c.exit()
		c.must(C.afcgo_clear(c.ptr))
	}
}

// Len returns the number of live entries.
func (c *Cache) Len() int {
	if !c.enter() {
		return 0
	}
	defer c.exit()
	return int(c.must(C.afcgo_len(c.ptr)))
}

// Weight returns the total weight of the live entries.
func (c *Cache) Weight() uint64 {
	if !c.enter() {
		return 0
	}
	defer c.exit()
	return c.must(C.afcgo_weight(c.ptr))
}

// Stats returns the statistics (expired entries are reclaimed first).
func (c *Cache) Stats() Stats {
	if !c.enter() {
		return Stats{}
	}
	defer c.exit()
	r := C.afcgo_stats(c.ptr)
	if r.status != C.AFC_OK {
		panic(statusError(r.status))
	}
	s := r.stats
	return Stats{uint64(s.hits), uint64(s.misses), uint64(s.inserts), uint64(s.updates),
		uint64(s.evictions), uint64(s.expirations), uint64(s.removals), uint64(s.entries),
		uint64(s.weight)}
}

// ResetStats sets every counter back to zero (not Entries and Weight).
func (c *Cache) ResetStats() {
	if c.enter() {
		defer c.exit()
		c.must(C.afcgo_reset_stats(c.ptr))
	}
}

// Expire reclaims every expired entry now and returns how many there were.
func (c *Cache) Expire() int {
	if !c.enter() {
		return 0
	}
	defer c.exit()
	return int(c.must(C.afcgo_expire(c.ptr)))
}

// Resize changes the entry bound (at least the shard count), evicting beyond it.
func (c *Cache) Resize(maxEntries uint64) error {
	if !c.enter() {
		return ErrClosed
	}
	defer c.exit()
	return resultError(C.afcgo_resize(c.ptr, C.uint64_t(maxEntries)))
}

// SetMaxBytes changes the byte bound of a cache built with one, evicting beyond it.
func (c *Cache) SetMaxBytes(maxBytes uint64) error {
	if !c.enter() {
		return ErrClosed
	}
	defer c.exit()
	return resultError(C.afcgo_set_max_bytes(c.ptr, C.uint64_t(maxBytes)))
}

// ---- time --------------------------------------------------------------------------------------

// SetTime sets the cache's manual clock (StatusNotManualClock on a monotonic one).
func (c *Cache) SetTime(now time.Duration) error {
	if now < 0 {
		return &Error{Status: StatusInvalidArgument, Message: "a time must not be negative"}
	}
	if !c.enter() {
		return ErrClosed
	}
	defer c.exit()
	return resultError(C.afcgo_clock_set(c.ptr, C.uint64_t(now)))
}

// Advance moves the cache's manual clock forward.
func (c *Cache) Advance(by time.Duration) error {
	if by < 0 {
		return &Error{Status: StatusInvalidArgument, Message: "a step must not be negative"}
	}
	if !c.enter() {
		return ErrClosed
	}
	defer c.exit()
	return resultError(C.afcgo_clock_advance(c.ptr, C.uint64_t(by)))
}

// Now returns the time of the cache's clock (either kind).
func (c *Cache) Now() time.Duration {
	if !c.enter() {
		return 0
	}
	defer c.exit()
	return durationOf(c.must(C.afcgo_clock_now(c.ptr)))
}

// ---- snapshots ---------------------------------------------------------------------------------

// SnapshotInfo is what Save, Load or VerifySnapshot found in a snapshot file.
type SnapshotInfo struct {
	FormatMajor, FormatMinor uint16
	ValueEncoding            uint32 // 0: bytes (every Go, C and Rust cache)
	Entries                  uint64 // the entries in the file
	EntriesKept              uint64 // after a Load, the entries the cache holds; else Entries
	FileBytes                uint64 // the file's length
}

func snapshotInfo(i C.afc_snapshot_info) SnapshotInfo {
	return SnapshotInfo{
		FormatMajor: uint16(i.format_major), FormatMinor: uint16(i.format_minor),
		ValueEncoding: uint32(i.value_encoding), Entries: uint64(i.entries),
		EntriesKept: uint64(i.entries_kept), FileBytes: uint64(i.file_bytes),
	}
}

// Save writes every live entry to the file path atomically (a temporary file beside it, flushed,
// then renamed over path): entries, recency order and remaining TTLs. Errors: *Error with
// StatusIOError when the file system refuses, or ErrClosed.
func (c *Cache) Save(path string) error {
	_, err := c.snapshot(path, true)
	return err
}

// Load replaces the cache's entries with those of the snapshot path (the listener hears the
// previous ones as cleared). The whole file is checked first: on any error the cache is unchanged.
// Errors: *Error with StatusIOError, StatusSnapshotInvalid (not a snapshot, truncated, corrupt),
// StatusSnapshotUnsupported (a newer format) or StatusSnapshotMismatch (values that are not
// plain bytes), or ErrClosed.
func (c *Cache) Load(path string) error {
	_, err := c.snapshot(path, false)
	return err
}

func (c *Cache) snapshot(path string, save bool) (SnapshotInfo, error) {
	if !c.enter() {
		return SnapshotInfo{}, ErrClosed
	}
	defer c.exit()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var r C.afcgo_snapshot_result
	if save {
		r = C.afcgo_save(c.ptr, cpath)
	} else {
		r = C.afcgo_load(c.ptr, cpath)
	}
	if err := resultError(r.result); err != nil {
		return SnapshotInfo{}, err
	}
	return snapshotInfo(r.info), nil
}

// VerifySnapshot checks the whole snapshot path without loading it and returns what its header
// says. Errors as for Load.
func VerifySnapshot(path string) (SnapshotInfo, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	r := C.afcgo_snapshot_verify(cpath)
	if err := resultError(r.result); err != nil {
		return SnapshotInfo{}, err
	}
	return snapshotInfo(r.info), nil
}

// ---- helpers -----------------------------------------------------------------------------------

// must returns a result's scalar output, or panics on a status that only a bug can cause (a
// closed cache never reaches the C call).
func (c *Cache) must(r C.afcgo_result) uint64 {
	if r.status != C.AFC_OK {
		panic(resultError(r))
	}
	return uint64(r.n)
}

func durationOf(ns uint64) time.Duration {
	if ns >= math.MaxInt64 {
		return NoExpiry
	}
	return time.Duration(ns)
}

// ManualClock is a manual clock that several caches can share (Options.Clock): moving it moves
// time for all of them. Close it when done (caches using it keep their own reference).
type ManualClock struct {
	ptr    *C.afc_clock
	closed atomic.Bool
}

// NewManualClock returns a clock at start.
func NewManualClock(start time.Duration) (*ManualClock, error) {
	if start < 0 {
		return nil, &Error{Status: StatusInvalidArgument, Message: "start must not be negative"}
	}
	r := C.afcgo_clock_new(C.uint64_t(start))
	if err := resultError(r); err != nil {
		return nil, err
	}
	k := &ManualClock{ptr: (*C.afc_clock)(r.ptr)}
	runtime.SetFinalizer(k, (*ManualClock).Close)
	return k, nil
}

func (k *ManualClock) use(config *C.afc_config) error {
	defer runtime.KeepAlive(k)
	if k.closed.Load() {
		return ErrClosed
	}
	return resultError(C.afcgo_config_use_clock(config, k.ptr))
}

// Set sets the time (it may move backwards).
func (k *ManualClock) Set(now time.Duration) {
	if now >= 0 && !k.closed.Load() {
		C.afc_clock_set(k.ptr, C.uint64_t(now))
	}
	runtime.KeepAlive(k)
}

// Advance moves the time forward (saturating).
func (k *ManualClock) Advance(by time.Duration) {
	if by >= 0 && !k.closed.Load() {
		C.afc_clock_advance(k.ptr, C.uint64_t(by))
	}
	runtime.KeepAlive(k)
}

// Now returns the current time.
func (k *ManualClock) Now() time.Duration {
	var ns uint64
	if !k.closed.Load() {
		ns = uint64(C.afcgo_clock_now_of(k.ptr).n)
	}
	runtime.KeepAlive(k)
	return durationOf(ns)
}

// Close frees this reference to the clock; caches built with it keep theirs. Do not call it
// while another goroutine uses the clock.
func (k *ManualClock) Close() error {
	if k.closed.CompareAndSwap(false, true) {
		runtime.SetFinalizer(k, nil)
		C.afc_clock_free(k.ptr)
	}
	return nil
}
