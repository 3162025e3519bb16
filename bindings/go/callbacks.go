package afcache

// The Go side of the C callbacks (shim.c): the eviction listener and get-or-insert's compute
// function. A file with //export may only declare C functions in its preamble.

/*
#include "afcgo.h"
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"runtime/debug"
	"sync/atomic"
	"unsafe"
)

// goBytes copies n bytes at p into a new slice the Go code owns.
func goBytes(p *C.uint8_t, n C.size_t) []byte {
	out := make([]byte, int(n))
	if n > 0 {
		copy(out, unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)))
	}
	return out
}

// listener is a cache's OnEvict with the first panic it raised, kept until a cache method
// re-raises it (a panic must not unwind through the C library's frames).
type listener struct {
	fn       func(key, value []byte, cause Cause)
	panicked atomic.Pointer[ListenerPanic]
}

// ListenerPanic is the value a cache method panics with when the OnEvict listener panicked
// during it: the listener's own panic value and the stack where it happened.
type ListenerPanic struct {
	Value any
	Stack []byte
}

func (p *ListenerPanic) Error() string {
	return fmt.Sprintf("afcache: the OnEvict listener panicked: %v\n%s", p.Value, p.Stack)
}

func (l *listener) call(key, value []byte, cause Cause) {
	defer func() {
		if r := recover(); r != nil {
			l.panicked.CompareAndSwap(nil, &ListenerPanic{Value: r, Stack: debug.Stack()})
		}
	}()
	l.fn(key, value, cause)
}

// repanic re-raises a panic of the listener, once.
func (l *listener) repanic() {
	if p := l.panicked.Swap(nil); p != nil {
		panic(p)
	}
}

//export afcGoListener
func afcGoListener(handle C.uintptr_t, key *C.uint8_t, keyLen C.size_t, value *C.uint8_t,
	valueLen C.size_t, cause C.int) {
	l := cgo.Handle(handle).Value().(*listener)
	l.call(goBytes(key, keyLen), goBytes(value, valueLen), Cause(cause))
}

// computeCall is one GetOrInsert call's compute function and what came of it.
type computeCall struct {
	fn  func(key []byte) ([]byte, error)
	err error // the function's error, or a *ComputePanic
}

// ComputePanic is the error GetOrInsert returns when its compute function panicked.
type ComputePanic struct {
	Value any
	Stack []byte
}

func (p *ComputePanic) Error() string {
	return fmt.Sprintf("afcache: the GetOrInsert compute function panicked: %v\n%s", p.Value, p.Stack)
}

func (c *computeCall) run(key []byte) (value []byte) {
	defer func() {
		if r := recover(); r != nil {
			c.err = &ComputePanic{Value: r, Stack: debug.Stack()}
			value = nil
		}
	}()
	value, c.err = c.fn(key)
	return value
}

//export afcGoCompute
func afcGoCompute(handle C.uintptr_t, key *C.uint8_t, keyLen C.size_t, out *C.afc_value_out) C.int32_t {
	c := cgo.Handle(handle).Value().(*computeCall)
	value := c.run(goBytes(key, keyLen))
	if c.err != nil {
		return 1
	}
	if err := resultError(C.afcgo_value_out_set(out, bytesPtr(value), C.size_t(len(value)))); err != nil {
		c.err = err
		return 1
	}
	return 0
}
