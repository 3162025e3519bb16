package afcache

/*
#include "afcgo.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Status is a status code of the C library (afc_status).
type Status int32

// The statuses an *Error can carry.
const (
	StatusNotFound        Status = C.AFC_NOT_FOUND
	StatusBufferTooSmall  Status = C.AFC_BUFFER_TOO_SMALL
	StatusNullPointer     Status = C.AFC_NULL_POINTER
	StatusInvalidArgument Status = C.AFC_INVALID_ARGUMENT
	StatusInvalidConfig   Status = C.AFC_INVALID_CONFIG
	StatusEntryTooHeavy   Status = C.AFC_ENTRY_TOO_HEAVY
	StatusEntryTooLarge   Status = C.AFC_ENTRY_TOO_LARGE
	StatusWrongValueKind  Status = C.AFC_WRONG_VALUE_KIND
	StatusNotManualClock  Status = C.AFC_NOT_MANUAL_CLOCK
	StatusComputeFailed   Status = C.AFC_COMPUTE_FAILED
	// StatusIOError: the file system refused a snapshot's file (missing, no permission...).
	StatusIOError Status = C.AFC_IO_ERROR
	// StatusSnapshotInvalid: not a snapshot, or truncated or corrupt.
	StatusSnapshotInvalid Status = C.AFC_SNAPSHOT_INVALID
	// StatusSnapshotUnsupported: a newer format version, or a feature this library cannot read.
	StatusSnapshotUnsupported Status = C.AFC_SNAPSHOT_UNSUPPORTED
	// StatusSnapshotMismatch: the snapshot's values are not plain bytes (a Python pickle file).
	StatusSnapshotMismatch Status = C.AFC_SNAPSHOT_MISMATCH
	StatusPanic            Status = C.AFC_PANIC
)

// String is the status's C name ("AFC_ENTRY_TOO_HEAVY", ...).
func (s Status) String() string {
	return C.GoString(C.afc_status_name(C.int32_t(s)))
}

// Error is a failure reported by the C library: its status and message. Compare statuses with
// errors.As(err, &e) and e.Status.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("afcache: %s: %s", e.Status, e.Message)
}

// resultError turns a helper's result into an error (nil for AFC_OK), freeing its message.
func resultError(r C.afcgo_result) error {
	if r.status == C.AFC_OK {
		return nil
	}
	message := "(no message)"
	if r.msg != nil {
		message = C.GoString(r.msg)
		C.free(unsafe.Pointer(r.msg))
	}
	return &Error{Status: Status(r.status), Message: message}
}

// statusError is an error for a status whose message is not at hand (nil for AFC_OK).
func statusError(status C.afc_status) error {
	if status == C.AFC_OK {
		return nil
	}
	return &Error{Status: Status(status), Message: Status(status).String()}
}
