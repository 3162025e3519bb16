//! `afc_clock`: a manual clock that several caches (and their caller) can share.

use super::args::{object, write};
use super::status::{afc_status, guard};
use crate::ManualClock;
use std::time::Duration;

/// A shared manual clock (opaque): `afc_clock_new`, `afc_clock_free`. Give it to caches with
/// `afc_config_use_clock`; moving it moves time for all of them. Thread-safe.
pub struct afc_clock(pub(crate) ManualClock);

/// Creates a manual clock at `start_ns`.
///
/// # Safety
/// `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_clock_new(start_ns: u64, out: *mut *mut afc_clock) -> afc_status {
    guard(|| {
        super::args::require(out, "out")?;
        let clock = ManualClock::new();
        clock.set(Duration::from_nanos(start_ns));
        // SAFETY: out is non-NULL and writable per this function's contract.
        unsafe { write(out, Box::into_raw(Box::new(afc_clock(clock))), "out") }
    })
}

/// Frees the caller's reference to a clock (caches using it keep theirs). NULL is ignored.
///
/// # Safety
/// `clock` NULL or from `afc_clock_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn afc_clock_free(clock: *mut afc_clock) {
    if !clock.is_null() {
        // SAFETY: a non-NULL clock came from Box::into_raw in afc_clock_new and is freed once.
        drop(unsafe { Box::from_raw(clock) });
    }
}

/// Sets the clock to `now_ns` (it may move backwards).
///
/// # Safety
/// `clock` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn afc_clock_set(clock: *const afc_clock, now_ns: u64) -> afc_status {
    guard(|| {
        // SAFETY: per this function's contract.
        unsafe { object(clock, "clock") }?
            .0
            .set(Duration::from_nanos(now_ns));
        Ok(())
    })
}

/// Moves the clock forward by `by_ns` (saturating).
///
/// # Safety
/// `clock` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn afc_clock_advance(clock: *const afc_clock, by_ns: u64) -> afc_status {
    guard(|| {
        // SAFETY: per this function's contract.
        unsafe { object(clock, "clock") }?
            .0
            .advance(Duration::from_nanos(by_ns));
        Ok(())
    })
}

/// Writes the clock's time in nanoseconds to `*out_ns`.
///
/// # Safety
/// `clock` NULL or live; `out_ns` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_clock_now(clock: *const afc_clock, out_ns: *mut u64) -> afc_status {
    guard(|| {
        // SAFETY: per this function's contract.
        let clock = unsafe { object(clock, "clock") }?;
        // SAFETY: per this function's contract.
        unsafe { write(out_ns, clock.0.now_nanos(), "out_ns") }
    })
}
