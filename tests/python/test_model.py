"""Random programs checked against a simple model (an OrderedDict, deadlines and counters), on each
backend with ``shards=1``; and, when the native backend exists, native and fallback run the same
program and must agree exactly (results, notifications, order, statistics)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import pytest
from _backends import BACKENDS, Recorder
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from alphaforge_cache import EntryTooHeavyError, ManualClock

NANOS = 1_000_000_000
NEVER = 2**64 - 1

KEYS = st.sampled_from([b"", b"a", b"b", b"cc", b"ddd", b"e", "é", b"f"])
VALUES = st.binary(max_size=12)
TTLS = st.sampled_from([None, None, 0.5, 1, 2.5, 4])
STEPS = st.sampled_from([0, 0.25, 0.5, 1, 2, 5])


def raw(key: Any) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


class Model:
    """The contract, written as plainly as possible (docs/semantics.md), one exact LRU."""

    def __init__(self, max_entries: int, max_bytes: Optional[int], ttl: Optional[float]) -> None:
        self.entries: "OrderedDict[bytes, Tuple[bytes, int]]" = OrderedDict()  # LRU first
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = None if ttl is None else round(ttl * NANOS)
        self.now = 0
        self.c = dict(
            hits=0, misses=0, inserts=0, updates=0, evictions=0, expirations=0, removals=0
        )
        self.told: List[Tuple[bytes, bytes, str]] = []

    def weight(self) -> int:
        return sum(len(k) + len(v) for k, (v, _) in self.entries.items())

    def _leave(self, key: bytes, cause: str) -> None:
        value, _ = self.entries.pop(key)
        counter = {
            "evicted": "evictions",
            "expired": "expirations",
            "removed": "removals",
            "cleared": "removals",
        }[cause]
        self.c[counter] += 1
        self.told.append((key, value, cause))

    def _live(self, key: bytes) -> Optional[bytes]:
        if key in self.entries:
            value, deadline = self.entries[key]
            if self.now >= deadline:
                self._leave(key, "expired")
                return None
            return value
        return None

    def _evict_lru(self) -> None:
        key, (_, deadline) = next(iter(self.entries.items()))
        self._leave(key, "expired" if self.now >= deadline else "evicted")

    def _sweep(self) -> List[bytes]:
        gone = [k for k, (_, d) in self.entries.items() if self.now >= d]
        for key in gone:
            self._leave(key, "expired")
        return gone

    def get(self, key: bytes) -> Optional[bytes]:
        value = self._live(key)
        if value is None:
            self.c["misses"] += 1
        else:
            self.c["hits"] += 1
            self.entries.move_to_end(key)
        return value

    def peek(self, key: bytes) -> Optional[bytes]:
        return self._live(key)

    def ttl_of(self, key: bytes) -> Any:
        if self._live(key) is None:
            return KeyError
        deadline = self.entries[key][1]
        return None if deadline == NEVER else (deadline - self.now) / NANOS

    def check(self, key: bytes, value: bytes) -> bool:
        return self.max_bytes is None or len(key) + len(value) <= self.max_bytes

    def store(self, key: bytes, value: bytes, ttl: Optional[float]) -> None:
        nanos = self.ttl if ttl is None else round(ttl * NANOS)
        endless = nanos is None or nanos >= NEVER
        deadline = NEVER if endless else min(self.now + nanos, NEVER - 1)
        old = self._live(key)
        if old is not None:
            self.told.append((key, old, "replaced"))
            self.entries[key] = (value, deadline)
            self.entries.move_to_end(key)
            self.c["updates"] += 1
        else:
            while len(self.entries) >= self.max_entries:
                self._evict_lru()
            self.entries[key] = (value, deadline)
            self.c["inserts"] += 1
        while (
            self.max_bytes is not None and self.weight() > self.max_bytes and len(self.entries) > 1
        ):
            self._evict_lru()

    def pop(self, key: bytes) -> Optional[bytes]:
        value = self._live(key)
        if value is not None:
            self._leave(key, "removed")
        return value

    def clear(self) -> None:
        for key in reversed(list(self.entries)):
            self._leave(key, "expired" if self.now >= self.entries[key][1] else "cleared")

    def resize(self, n: int) -> None:
        self.max_entries = n
        while len(self.entries) > n:
            self._evict_lru()

    def set_max_bytes(self, n: int) -> None:
        self.max_bytes = n
        while self.weight() > n and self.entries:
            self._evict_lru()

    def items(self) -> List[Tuple[bytes, bytes]]:
        return [(k, v) for k, (v, d) in reversed(self.entries.items()) if self.now < d]

    def save(self) -> List[Tuple[bytes, bytes, Optional[int]]]:
        """What a snapshot holds: the live entries, LRU first, with the nanoseconds left."""
        return [
            (k, v, None if d == NEVER else d - self.now)
            for k, (v, d) in self.entries.items()
            if self.now < d
        ]

    def load(self, saved: List[Tuple[bytes, bytes, Optional[int]]]) -> int:
        """A clear, then the saved entries put in order into an empty cache of these bounds;
        entries that do not fit are neither counted nor told, one too heavy is skipped."""
        self.clear()
        staged: "OrderedDict[bytes, Tuple[bytes, int]]" = OrderedDict()
        for key, value, left in saved:
            if self.max_bytes is not None and len(key) + len(value) > self.max_bytes:
                continue
            if len(staged) >= self.max_entries:
                staged.popitem(last=False)
            endless = left is None or left >= NEVER
            staged[key] = (value, NEVER if endless else min(self.now + left, NEVER - 1))
            while self.max_bytes is not None and len(staged) > 1:
                if sum(len(k) + len(v) for k, (v, _) in staged.items()) <= self.max_bytes:
                    break
                staged.popitem(last=False)
        self.entries = staged
        self.c["inserts"] += len(staged)
        return len(staged)

    def stats(self) -> Dict[str, int]:
        self._sweep()
        return dict(self.c, entries=len(self.entries), weight=self.weight())


def outcome(call: Any) -> Any:
    """A call's result, or the type of what it raised (compared across backends and model)."""
    try:
        return ("ok", call())
    except Exception as error:  # noqa: BLE001
        return ("raised", type(error).__name__)


class CacheMachine(RuleBasedStateMachine):
    """Runs every operation on each subject cache and on the model, comparing everything."""

    classes: List[Any] = []

    @initialize(
        max_entries=st.integers(1, 6),
        max_bytes=st.one_of(st.none(), st.integers(1, 40)),
        ttl=TTLS,
    )
    def build(self, max_entries: int, max_bytes: Optional[int], ttl: Optional[float]) -> None:
        self.model = Model(max_entries, max_bytes, ttl)
        self.clocks = [ManualClock() for _ in self.classes]
        self.recorders = [Recorder() for _ in self.classes]
        self.caches = [
            cls(max_entries, max_bytes=max_bytes, ttl=ttl, shards=1, timer=clock, on_evict=rec)
            for cls, clock, rec in zip(self.classes, self.clocks, self.recorders)
        ]

        self.files = tempfile.mkdtemp(prefix="afc-model-")
        self.saved: Optional[List[Tuple[bytes, bytes, Optional[int]]]] = None

    def teardown(self) -> None:
        for cache in getattr(self, "caches", []):
            cache.close()
        if hasattr(self, "files"):
            shutil.rmtree(self.files, ignore_errors=True)

    def path(self, cache: Any) -> str:
        return os.path.join(self.files, f"{self.caches.index(cache)}.afcs")

    def each(self, op: Any) -> Any:
        """``op(cache)`` on every subject; all must agree (results and notifications)."""
        results = [outcome(lambda c=c: op(c)) for c in self.caches]
        told = [rec.take() for rec in self.recorders]
        for name, result, notes in zip(self.classes, results[1:], told[1:]):
            assert result == results[0], (
                f"{self.classes[0].backend} gave {results[0]!r}, {name.backend} {result!r}"
            )
            assert notes == told[0], f"notifications differ: {told[0]!r} vs {notes!r}"
        return results[0], told[0]

    def expect(self, op: Any, expected: Any, *, sort_told: bool = False) -> None:
        result, told = self.each(op)
        model_told, self.model.told = self.model.told, []
        assert result == expected, f"backend gave {result!r}, model {expected!r}"
        if sort_told:
            told, model_told = sorted(told), sorted(model_told)
        assert told == model_told, f"notifications: backend {told!r}, model {model_told!r}"

    @rule(key=KEYS)
    def get(self, key: Any) -> None:
        self.expect(lambda c: c.get(key), ("ok", self.model.get(raw(key))))

    @rule(key=KEYS)
    def getitem(self, key: Any) -> None:
        value = self.model.get(raw(key))
        self.expect(
            lambda c: c[key], ("ok", value) if value is not None else ("raised", "KeyError")
        )

    @rule(key=KEYS)
    def peek(self, key: Any) -> None:
        self.expect(lambda c: c.peek(key), ("ok", self.model.peek(raw(key))))

    @rule(key=KEYS)
    def contains(self, key: Any) -> None:
        self.expect(lambda c: key in c, ("ok", self.model.peek(raw(key)) is not None))

    @rule(key=KEYS)
    def ttl_of(self, key: Any) -> None:
        left = self.model.ttl_of(raw(key))
        self.expect(
            lambda c: c.ttl_of(key), ("raised", "KeyError") if left is KeyError else ("ok", left)
        )

    @rule(key=KEYS, value=VALUES, ttl=TTLS)
    def put(self, key: Any, value: bytes, ttl: Optional[float]) -> None:
        if self.model.check(raw(key), value):
            self.model.store(raw(key), value, ttl)
            expected: Any = ("ok", None)
        else:
            expected = ("raised", EntryTooHeavyError.__name__)
        self.expect(lambda c: c.put(key, value, ttl=ttl), expected)

    @rule(items=st.lists(st.tuples(KEYS, VALUES), max_size=4), ttl=TTLS)
    def put_many(self, items: List[Tuple[Any, bytes]], ttl: Optional[float]) -> None:
        if all(self.model.check(raw(k), v) for k, v in items):
            for k, v in items:
                self.model.store(raw(k), v, ttl)
            expected: Any = ("ok", None)
        else:
            expected = ("raised", EntryTooHeavyError.__name__)
        self.expect(lambda c: c.put_many(items, ttl=ttl), expected)

    @rule(keys=st.lists(KEYS, max_size=4))
    def get_many(self, keys: List[Any]) -> None:
        self.expect(lambda c: c.get_many(keys), ("ok", [self.model.get(raw(k)) for k in keys]))

    @rule(key=KEYS, value=VALUES)
    def get_or_set(self, key: Any, value: bytes) -> None:
        found = self.model.get(raw(key))
        if found is None and self.model.check(raw(key), value):
            self.model.store(raw(key), value, None)
        self.expect(
            lambda c: c.get_or_set(key, lambda: value), ("ok", value if found is None else found)
        )

    @rule(key=KEYS)
    def pop(self, key: Any) -> None:
        self.expect(lambda c: c.pop(key, None), ("ok", self.model.pop(raw(key))))

    @rule(key=KEYS)
    def delitem(self, key: Any) -> None:
        found = self.model.pop(raw(key))
        self.expect(
            lambda c: c.__delitem__(key),
            ("ok", None) if found is not None else ("raised", "KeyError"),
        )

    @rule()
    def clear(self) -> None:
        self.model.clear()
        self.expect(lambda c: c.clear(), ("ok", None), sort_told=True)

    @rule()
    def expire(self) -> None:
        gone = self.model._sweep()
        result, told = self.each(lambda c: c.expire())
        model_told, self.model.told = self.model.told, []
        assert result[0] == "ok" and sorted(result[1]) == sorted(gone)
        assert sorted(told) == sorted(model_told)

    @rule(n=st.integers(1, 6))
    def resize(self, n: int) -> None:
        self.model.resize(n)
        self.expect(lambda c: c.resize(n), ("ok", None))

    @rule(n=st.integers(1, 40))
    def set_max_bytes(self, n: int) -> None:
        if self.model.max_bytes is None:
            self.expect(lambda c: c.set_max_bytes(n), ("raised", "ValueError"))
        else:
            self.model.set_max_bytes(n)
            self.expect(lambda c: c.set_max_bytes(n), ("ok", None))

    @rule(step=STEPS)
    def advance(self, step: float) -> None:
        for clock in self.clocks:
            clock.advance(step)
        self.model.now += round(step * NANOS)

    @rule()
    def length(self) -> None:
        stats = self.model.stats()
        self.expect(lambda c: len(c), ("ok", stats["entries"]), sort_told=True)

    @rule()
    def stats(self) -> None:
        expected = self.model.stats()
        result, told = self.each(lambda c: c.stats())
        model_told, self.model.told = self.model.told, []
        assert result[0] == "ok"
        s = result[1]
        got = {f: getattr(s, f) for f in expected}
        assert got == expected
        assert s.hit_ratio == (s.hits / (s.hits + s.misses) if s.hits + s.misses else 0.0)
        assert sorted(told) == sorted(model_told)

    @rule()
    def save(self) -> None:
        self.saved = self.model.save()
        result, _ = self.each(lambda c: c.save(self.path(c)).entries)
        assert result == ("ok", len(self.saved))
        files = set()
        for cache in self.caches:
            with open(self.path(cache), "rb") as f:
                files.add(f.read())
        assert len(files) == 1, "the backends wrote different bytes for one state"

    @rule()
    def load(self) -> None:
        if self.saved is None:
            return
        kept = self.model.load(self.saved)
        self.expect(lambda c: c.load(self.path(c)).entries_kept, ("ok", kept))

    @rule()
    def reset_stats(self) -> None:
        for name in self.model.c:
            self.model.c[name] = 0
        self.expect(lambda c: c.reset_stats(), ("ok", None))

    @invariant()
    def snapshot_matches(self) -> None:
        if not hasattr(self, "model"):
            return
        self.expect(lambda c: c.items(), ("ok", self.model.items()))
        self.expect(lambda c: [k for k in c], ("ok", [k for k, _ in self.model.items()]))


SETTINGS = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def machine_for(classes: List[Any]) -> Any:
    machine = type(
        "Machine_" + "_".join(c.backend for c in classes), (CacheMachine,), {"classes": classes}
    )
    machine.TestCase.settings = SETTINGS
    return machine


@pytest.mark.parametrize("cls", [cls for _, cls in BACKENDS], ids=[name for name, _ in BACKENDS])
def test_backend_against_model(cls: Any) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(machine_for([cls]), settings=SETTINGS)


@pytest.mark.skipif(len(BACKENDS) < 2, reason="the native backend is not built")
def test_native_and_fallback_agree() -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(machine_for([cls for _, cls in BACKENDS]), settings=SETTINGS)


def test_model_machine_catches_a_wrong_backend() -> None:
    """The machine is not vacuous: a backend whose get does not refresh recency is caught."""
    from hypothesis.stateful import run_state_machine_as_test

    import alphaforge_cache

    class NoRecency(alphaforge_cache.PythonCache):  # type: ignore[misc, valid-type]
        """Replays buffered gets into the counters but never into recency."""

        backend = "broken"

        def _replay(self, keys: List[Any], misses: int) -> None:
            hits = sum(1 for key in keys if key in self._entries)
            self._counters[0] += hits
            self._counters[1] += misses + len(keys) - hits

    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            machine_for([NoRecency]),
            settings=settings(
                SETTINGS,
                max_examples=300,
                database=None,
                print_blob=False,
                report_multiple_bugs=False,
            ),
        )
