"""The native backend's mirror table (``_reads.Mirror``, ``_mirror.c``): the same answers as a
dict for every sequence of changes, dict lookup semantics for keys of other types, and safety
when the Python code it runs (a key's ``==``, a value's release) changes it meanwhile."""

from __future__ import annotations

import gc
import weakref
from typing import Any, Dict, List

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

reads = pytest.importorskip("alphaforge_cache._reads")
Mirror = reads.Mirror

# Few distinct keys, so that sequences revisit them; up to 40 of them fill tables of 8 to 128
# slots, so probe runs form, wrap around the end and are cut by removals.
KEYS = [bytes([i]) * (1 + i % 3) for i in range(40)]
key = st.sampled_from(KEYS)


class MirrorVersusDict(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mirror = Mirror()
        self.model: Dict[bytes, int] = {}

    @rule(k=key, v=st.integers())
    def store(self, k: bytes, v: int) -> None:
        self.mirror[k] = v
        self.model[k] = v

    @rule(k=key)
    def delete(self, k: bytes) -> None:
        if k in self.model:
            del self.mirror[k]
            del self.model[k]
        else:
            with pytest.raises(KeyError):
                del self.mirror[k]

    @rule(k=key)
    def pop(self, k: bytes) -> None:
        assert self.mirror.pop(k, "absent") == self.model.pop(k, "absent")

    @rule(k=key)
    def get(self, k: bytes) -> None:
        assert self.mirror.get(k) == self.model.get(k)
        assert (k in self.mirror) == (k in self.model)

    @rule(pairs=st.lists(st.tuples(key, st.integers()), max_size=12))
    def update(self, pairs: List[Any]) -> None:
        self.mirror.update(pairs)
        self.model.update(pairs)

    @rule()
    def clear(self) -> None:
        self.mirror.clear()
        self.model.clear()

    @invariant()
    def same_entries(self) -> None:
        assert len(self.mirror) == len(self.model)
        assert sorted(self.mirror) == sorted(self.model)
        assert dict(self.mirror) == self.model == dict(self.mirror.items())
        assert list(zip(self.mirror.keys(), self.mirror.values())) == self.mirror.items()
        for k in KEYS:
            assert self.mirror.get(k, "absent") == self.model.get(k, "absent")


TestMirrorVersusDict = MirrorVersusDict.TestCase
TestMirrorVersusDict.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


def test_many_keys_grow_and_shrink() -> None:
    mirror = Mirror()
    keys = [i.to_bytes(16, "little") for i in range(20_000)]
    for i, k in enumerate(keys):
        mirror[k] = i
    assert len(mirror) == len(keys)
    for k in keys[::2]:
        del mirror[k]
    assert [mirror.get(k) for k in keys[:6]] == [None, 1, None, 3, None, 5]
    assert len(mirror) == len(keys) // 2
    mirror.clear()
    assert len(mirror) == 0 and mirror.get(keys[1]) is None
    # Many pairs at once (a load's update: room made for them all first), some given twice,
    # into an empty mirror and then over half of them.
    pairs = [(k, i) for i, k in enumerate(keys)] + [(keys[0], -1)]
    mirror.update(pairs)
    assert len(mirror) == len(keys) and mirror.get(keys[0]) == -1 and mirror[keys[-1]] == 19_999
    mirror.update((k, "again") for k in keys[::2])  # a generator: no length to go by
    assert dict(mirror) == {k: "again" if i % 2 == 0 else i for i, k in enumerate(keys)}


def test_lookups_with_other_key_types_answer_as_a_dict_does() -> None:
    mirror, model = Mirror(), {}
    for table in (mirror, model):
        table[b"abc"] = 1
    for probe in (memoryview(b"abc"), "abc", 97, b"abd"):
        assert mirror.get(probe, "absent") == model.get(probe, "absent")
        assert (probe in mirror) == (probe in model)
    for unhashable in (bytearray(b"abc"), [1]):
        with pytest.raises(TypeError):
            mirror.get(unhashable)
        with pytest.raises(TypeError):
            model.get(unhashable)  # type: ignore[call-overload]


def test_only_bytes_keys_are_stored() -> None:
    mirror = Mirror()
    for bad in ("abc", bytearray(b"abc"), memoryview(b"abc"), 1):
        with pytest.raises(TypeError):
            mirror[bad] = 1
    assert len(mirror) == 0


def test_a_key_whose_equality_changes_the_table_restarts_the_lookup() -> None:
    mirror = Mirror()
    stored = [i.to_bytes(8, "little") for i in range(64)]
    for i, k in enumerate(stored):
        mirror[k] = i

    class Meddler:
        """Hashes as a stored key and, when compared, removes and re-adds half the table."""

        def __init__(self, target: bytes) -> None:
            self.target = target
            self.calls = 0

        def __hash__(self) -> int:
            return hash(self.target)

        def __eq__(self, other: object) -> bool:
            self.calls += 1
            if self.calls == 1:
                for k in stored[::2]:
                    value = mirror.pop(k)
                    mirror[k] = value
            return other == self.target

    probe = Meddler(stored[5])
    assert mirror.get(probe) == 5
    assert probe.calls >= 1
    assert sorted(mirror) == sorted(stored)


def test_releasing_a_value_may_change_the_table() -> None:
    mirror = Mirror()

    class Reentrant:
        def __del__(self) -> None:
            mirror[b"from-del"] = 0  # runs while a value is replaced, popped or cleared

    for op in ("replace", "pop", "delete", "clear"):
        mirror.clear()
        mirror[b"k"] = Reentrant()
        mirror[b"other"] = 1
        if op == "replace":
            mirror[b"k"] = 2
        elif op == "pop":
            assert isinstance(mirror.pop(b"k"), Reentrant)
        elif op == "delete":
            del mirror[b"k"]
        else:
            mirror.clear()
        gc.collect()
        assert mirror.get(b"from-del") == 0, op


def test_an_update_whose_list_changes_under_it_stores_what_a_dict_would() -> None:
    # update() fetches the keys and slots of pairs ahead of the one it stores; a value released
    # on the way may run code that shortens, empties or grows the very list being stored.

    class Changer:
        def __init__(self, change: str, pairs: List[Any]) -> None:
            self.change, self.pairs = change, pairs

        def __del__(self) -> None:
            if self.change == "shorten":
                del self.pairs[30:]
            elif self.change == "empty":
                self.pairs.clear()
            else:
                self.pairs.extend((bytes([200, i]), i) for i in range(40))

    for change in ("shorten", "empty", "grow"):
        pairs: List[Any] = []
        keys = [bytes([i]) * 3 for i in range(60)]
        mirror = Mirror()
        mirror[keys[10]] = Changer(change, pairs)  # released when pair 10 replaces it
        pairs.extend((k, i) for i, k in enumerate(keys))
        mirror.update(pairs)
        gc.collect()
        # As a dict's update: the pairs up to the change, then what the list holds after it.
        stored = dict(mirror)
        assert all(stored[k] == i for i, k in enumerate(keys[:11])), change
        if change == "shorten":
            assert set(stored) == set(keys[:30]), change
        elif change == "empty":
            assert set(stored) == set(keys[:11]), change
        else:
            assert set(stored) == set(keys) | {bytes([200, i]) for i in range(40)}, change


def test_values_are_released_and_cycles_collected() -> None:
    class Value:
        pass

    mirror = Mirror()
    values = [Value() for _ in range(3)]
    refs = [weakref.ref(v) for v in values]
    for i, v in enumerate(values):
        mirror[bytes([i])] = v
    del values, v  # the loop variable held the last one
    mirror[b"\x00"] = None  # replaced
    mirror.pop(b"\x01")
    del mirror[b"\x02"]
    assert all(r() is None for r in refs)

    # A value that refers back to its mirror: a cycle only the collector can free.
    cyclic = Mirror()
    holder = Value()
    holder.mirror = cyclic  # type: ignore[attr-defined]
    cyclic[b"self"] = holder
    ref = weakref.ref(holder)
    del cyclic, holder
    gc.collect()
    assert ref() is None


def test_iteration_sees_a_snapshot_of_the_keys() -> None:
    mirror = Mirror()
    mirror.update([(b"a", 1), (b"b", 2)])
    seen = []
    for k in mirror:
        mirror[k + b"!"] = 0  # no error: the iteration walks the keys as they were
        seen.append(k)
    assert sorted(seen) == [b"a", b"b"] and len(mirror) == 4


def test_update_rejects_what_is_not_a_pair() -> None:
    mirror = Mirror()
    with pytest.raises(TypeError):
        mirror.update([b"abc"])
    with pytest.raises(TypeError):
        mirror.update(3)
    mirror.update({b"x": 1})
    assert mirror[b"x"] == 1
    with pytest.raises(KeyError):
        mirror[b"y"]
