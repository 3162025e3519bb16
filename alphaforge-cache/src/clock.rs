//! Time sources: real monotonic time, or a manual clock that tests and backtests advance.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The latest time a clock reports (about 584 years): one below `u64::MAX`, which marks an entry
/// that never expires.
pub const MAX_CLOCK_NANOS: u64 = u64::MAX - 1;

/// The time source of a cache. Every cache operation reads it at most once.
///
/// Time is measured in nanoseconds from the clock's origin: the moment a monotonic clock was created,
/// or zero for a [`ManualClock`] (which the caller may start anywhere).
#[derive(Clone)]
pub struct Clock {
    kind: ClockKind,
}

#[derive(Clone)]
enum ClockKind {
    Monotonic(Instant),
    Manual(ManualClock),
}

impl Clock {
    /// Real monotonic time (`std::time::Instant`), starting at zero now.
    pub fn monotonic() -> Self {
        Clock {
            kind: ClockKind::Monotonic(Instant::now()),
        }
    }

    /// A clock that only moves when `clock` is set or advanced.
    pub fn manual(clock: &ManualClock) -> Self {
        Clock {
            kind: ClockKind::Manual(clock.clone()),
        }
    }

    /// Nanoseconds since the clock's origin, at most [`MAX_CLOCK_NANOS`].
    #[inline]
    pub fn now_nanos(&self) -> u64 {
        let now = match &self.kind {
            ClockKind::Monotonic(origin) => saturating_nanos(origin.elapsed()),
            ClockKind::Manual(manual) => manual.now_nanos(),
        };
        now.min(MAX_CLOCK_NANOS)
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        matches!(self.kind, ClockKind::Manual(_))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::monotonic()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ClockKind::Monotonic(_) => f.write_str("Clock::Monotonic"),
            ClockKind::Manual(m) => write!(f, "Clock::Manual({}ns)", m.now_nanos()),
        }
    }
}

/// A clock the caller moves: share it with a cache through [`Clock::manual`], then `advance` or
/// `set` it. Clones share one time value. It starts at zero.
#[derive(Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock at time zero.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Moves time forward by `by` (saturating at the largest representable time).
    pub fn advance(&self, by: Duration) {
        let by = saturating_nanos(by);
        let _ = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(by))
            });
    }

    /// Sets the time to `to` after the origin. It may move time backwards (a backtest rewinding);
    /// entries then simply expire later.
    pub fn set(&self, to: Duration) {
        self.now.store(saturating_nanos(to), Ordering::Release);
    }

    /// The current time since the origin.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    /// The current time in nanoseconds since the origin.
    #[inline]
    pub fn now_nanos(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManualClock({}ns)", self.now_nanos())
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_advances_and_sets() {
        let manual = ManualClock::new();
        let clock = Clock::manual(&manual);
        assert_eq!(clock.now_nanos(), 0);
        manual.advance(Duration::from_millis(5));
        assert_eq!(clock.now_nanos(), 5_000_000);
        manual.set(Duration::from_secs(1));
        assert_eq!(manual.now(), Duration::from_secs(1));
        manual.advance(Duration::MAX);
        assert_eq!(clock.now_nanos(), MAX_CLOCK_NANOS);
        assert!(clock.is_manual());
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let clock = Clock::monotonic();
        let a = clock.now_nanos();
        std::thread::sleep(Duration::from_millis(2));
        assert!(clock.now_nanos() >= a + 1_000_000);
        assert!(!clock.is_manual());
    }
}
