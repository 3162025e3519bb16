"""alphaforge_cache.compat against cachetools itself: random sequences of operations applied to
both, every result (value or exception) and the whole state compared after every step.

The state compared is cachetools' internals against ours: the data in insertion order (what
iteration and repr show), the recency order, the sizes and ``currsize``, and for TTLCache the
expiry order with each item's expiry time. The TTL timer advances on every read, so a read
more or fewer than cachetools makes the caches diverge at once. Subclasses overriding hooks
(``__missing__``, ``popitem``, ``__delitem__``, ``__getitem__``, ``getsizeof``, ``expire``)
log every hook call, and the logs are compared too.

Needs cachetools 8 (Python >= 3.11); skipped where it is not installed.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any, Callable, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphaforge_cache import compat

cachetools = pytest.importorskip("cachetools")
if int(cachetools.__version__.split(".")[0]) < 8:  # pragma: no cover - old cachetools
    pytest.skip("the reference is cachetools 8", allow_module_level=True)

KEYS = [1, 1.0, True, 2, 3, "a", "b", (1, 2), 0, False]
VALUES = st.integers(min_value=0, max_value=6)


class AutoTimer:
    """A timer that advances by 1 on every read (so reads are counted) and can jump."""

    def __init__(self) -> None:
        self.time = 0

    def __call__(self) -> int:
        self.time += 1
        return self.time

    def tick(self, n: int = 1) -> None:
        """Moves time forward by ``n``."""
        self.time += n


def outcome(call: Callable[[], Any]) -> Tuple[Any, ...]:
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - the exception is the outcome compared
        return ("raised", type(error).__name__, error.args)
    if isinstance(result, (compat.LRUCache, compat.TTLCache, cachetools.Cache)):
        return ("cache", repr(result))
    return ("returned", result)


def lru_state(c: Any, ours: bool) -> Dict[str, Any]:
    if ours:
        data = [(k, c._od[k]) for k in c._ins]
        order = list(c._od)
        sizes = None if c._sizes is None else dict(c._sizes)
        currsize = len(c._od) if c._sizes is None else c._currsize
    else:
        data = list(c._Cache__data.items())
        order = list(c._LRUCache__order)
        sizes = None if c._Cache__size is None else dict(c._Cache__size)
        currsize = c._Cache__currsize
    return {"data": data, "order": order, "sizes": sizes, "currsize": currsize}


def ttl_state(c: Any, ours: bool) -> Dict[str, Any]:
    if ours:
        data = [(k, c._od[k]) for k in c._ins]
        order = list(c._od)
        expiry = list(c._exp.items())
        # The floor is a time no stored item expires before.
        assert c._floor is None or all(c._floor <= t for t in c._exp.values())
        sizes = None if c._sizes is None else dict(c._sizes)
        currsize = len(c._od) if c._sizes is None else c._currsize
    else:
        data = list(c._Cache__data.items())
        order = list(c._TTLCache__links)
        expiry = []
        root = c._TTLCache__root
        link = root.next
        while link is not root:
            expiry.append((link.key, link.expires))
            link = link.next
        sizes = None if c._Cache__size is None else dict(c._Cache__size)
        currsize = c._Cache__currsize
    return {
        "data": data,
        "order": order,
        "expiry": expiry,
        "sizes": sizes,
        "currsize": currsize,
    }


# ----- operations (each applied to one cache; the same draw to both) ----------------------------

OPS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS), VALUES),
    st.tuples(st.just("getitem"), st.sampled_from(KEYS)),
    st.tuples(st.just("get"), st.sampled_from(KEYS)),
    st.tuples(st.just("get_default"), st.sampled_from(KEYS), VALUES),
    st.tuples(st.just("contains"), st.sampled_from(KEYS)),
    st.tuples(st.just("del"), st.sampled_from(KEYS)),
    st.tuples(st.just("pop"), st.sampled_from(KEYS)),
    st.tuples(st.just("pop_default"), st.sampled_from(KEYS), VALUES),
    st.tuples(st.just("popitem")),
    st.tuples(st.just("setdefault"), st.sampled_from(KEYS), VALUES),
    st.tuples(st.just("update"), st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3)),
    st.tuples(st.just("len")),
    st.tuples(st.just("iter")),
    st.tuples(st.just("items")),
    st.tuples(st.just("values")),
    st.tuples(st.just("repr")),
    st.tuples(st.just("currsize")),
    st.tuples(st.just("eq")),
    st.tuples(st.just("copy")),
    st.tuples(st.just("clear")),
    st.tuples(st.just("tick"), st.integers(min_value=0, max_value=4)),
    st.tuples(st.just("rewind"), st.integers(min_value=1, max_value=6)),
    st.tuples(st.just("expire")),
    st.tuples(st.just("expire_at"), st.integers(min_value=0, max_value=60)),
    st.tuples(st.just("frozen_get"), st.sampled_from(KEYS)),
    st.tuples(st.just("unhashable")),
)


def apply(c: Any, op: Tuple[Any, ...], ttl: bool) -> Any:
    name = op[0]
    if name == "set":
        c[op[1]] = op[2]
        return None
    if name == "getitem":
        return c[op[1]]
    if name == "get":
        return c.get(op[1])
    if name == "get_default":
        return c.get(op[1], op[2])
    if name == "contains":
        return op[1] in c
    if name == "del":
        del c[op[1]]
        return None
    if name == "pop":
        return c.pop(op[1])
    if name == "pop_default":
        return c.pop(op[1], op[2])
    if name == "popitem":
        return c.popitem()
    if name == "setdefault":
        return c.setdefault(op[1], op[2])
    if name == "update":
        c.update(op[1])
        return None
    if name == "len":
        return len(c)
    if name == "iter":
        return list(c)
    if name == "items":
        return list(c.items())
    if name == "values":
        return list(c.values())
    if name == "repr":
        return repr(c).split("(", 1)[1]  # the class names differ only for the oracle's own
    if name == "currsize":
        return c.currsize
    if name == "eq":
        return c == dict(c.items())
    if name == "copy":
        return repr(copy.copy(c)).split("(", 1)[1]
    if name == "clear":
        c.clear()
        return None
    if name == "unhashable":
        return c.get([1])
    if not ttl:
        return None
    if name == "tick":
        c.timer.tick(op[1])
        return None
    if name == "rewind":  # a timer going back in time (cachetools does not forbid it)
        c.user_timer.time = max(0, c.user_timer.time - op[1])
        return None
    if name == "expire":
        return c.expire()
    if name == "expire_at":
        return c.expire(op[1])
    if name == "frozen_get":
        with c.timer as now:
            with c.timer as again:
                assert now == again
                return (c.get(op[1]), op[1] in c, c.timer() == now)
    raise AssertionError(name)


# ----- the caches compared: plain, and subclasses overriding hooks --------------------------------


def hooked(base: type, log: List[Any], flavour: str) -> type:
    """A subclass of ``base`` (ours or cachetools') overriding the hooks of ``flavour``."""
    if flavour == "plain":
        return base
    if flavour == "missing":

        class Missing(base):  # type: ignore[valid-type,misc]
            def __missing__(self, key: Any) -> Any:
                log.append(("missing", key))
                try:
                    self[key] = 5
                except ValueError:
                    pass
                return 5

        return Missing
    if flavour == "popitem":

        class PopItem(base):  # type: ignore[valid-type,misc]
            def popitem(self) -> Any:
                item = super().popitem()
                log.append(("popitem", item))
                return item

        return PopItem
    if flavour == "delitem":

        class DelItem(base):  # type: ignore[valid-type,misc]
            def __delitem__(self, key: Any) -> None:
                log.append(("delitem", key))
                super().__delitem__(key)

        return DelItem
    if flavour == "getitem":

        class GetItem(base):  # type: ignore[valid-type,misc]
            def __getitem__(self, key: Any) -> Any:
                log.append(("getitem", key))
                return super().__getitem__(key)

            def __contains__(self, key: object) -> bool:
                log.append(("contains", key))
                return super().__contains__(key)

        return GetItem
    if flavour == "getsizeof":

        class GetSizeOf(base):  # type: ignore[valid-type,misc]
            def getsizeof(self, value: Any) -> Any:
                log.append(("getsizeof", value))
                return value % 3

        return GetSizeOf
    if flavour == "expire":

        class Expire(base):  # type: ignore[valid-type,misc]
            def expire(self, time: Any = None) -> Any:
                items = super().expire(time)
                log.append(("expire", time, list(items)))
                return items

        return Expire
    raise AssertionError(flavour)


LRU_FLAVOURS = ["plain", "missing", "popitem", "delitem", "getitem", "getsizeof"]
TTL_FLAVOURS = LRU_FLAVOURS + ["expire"]
MAXSIZES = st.sampled_from([0, 1, 2, 3, 5, 2.5])
SIZES = st.sampled_from([None, "mod4"])


def mod4(value: int) -> int:
    """A getsizeof giving sizes 0..3 (0 included: cachetools accepts it)."""
    return value % 4


def sizer(kind: Any) -> Any:
    return None if kind is None else mod4


@pytest.mark.parametrize("flavour", LRU_FLAVOURS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(maxsize=MAXSIZES, sizes=SIZES, ops=st.lists(OPS, max_size=40))
def test_lru_cache_matches_cachetools(flavour: str, maxsize: Any, sizes: Any, ops: Any) -> None:
    our_log: List[Any] = []
    their_log: List[Any] = []
    ours = hooked(compat.LRUCache, our_log, flavour)(maxsize, getsizeof=sizer(sizes))
    theirs = hooked(cachetools.LRUCache, their_log, flavour)(maxsize, getsizeof=sizer(sizes))
    for op in ops:
        assert outcome(lambda op=op: apply(ours, op, False)) == outcome(
            lambda op=op: apply(theirs, op, False)
        ), op
        assert lru_state(ours, True) == lru_state(theirs, False), op
        assert our_log == their_log, op
    if flavour == "plain":  # the hooked subclasses are local classes: not picklable
        copied = pickle.loads(pickle.dumps(ours))
        assert lru_state(copied, True) == lru_state(ours, True)
    assert lru_state(copy.deepcopy(ours), True) == lru_state(ours, True)


@pytest.mark.parametrize("flavour", TTL_FLAVOURS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    maxsize=MAXSIZES,
    sizes=SIZES,
    ttl=st.integers(min_value=1, max_value=12),
    ops=st.lists(OPS, max_size=40),
)
def test_ttl_cache_matches_cachetools(
    flavour: str, maxsize: Any, sizes: Any, ttl: int, ops: Any
) -> None:
    our_log: List[Any] = []
    their_log: List[Any] = []
    our_timer, their_timer = AutoTimer(), AutoTimer()
    ours = hooked(compat.TTLCache, our_log, flavour)(
        maxsize, ttl, timer=our_timer, getsizeof=sizer(sizes)
    )
    theirs = hooked(cachetools.TTLCache, their_log, flavour)(
        maxsize, ttl, timer=their_timer, getsizeof=sizer(sizes)
    )
    ours.user_timer, theirs.user_timer = our_timer, their_timer
    for op in ops:
        assert outcome(lambda op=op: apply(ours, op, True)) == outcome(
            lambda op=op: apply(theirs, op, True)
        ), op
        assert our_timer.time == their_timer.time, ("timer reads", op)
        assert ttl_state(ours, True) == ttl_state(theirs, False), op
        assert our_log == their_log, op


@settings(max_examples=60, deadline=None)
@given(ttl=st.integers(min_value=1, max_value=12), ops=st.lists(OPS, max_size=30))
def test_ttl_pickle_and_deepcopy_match_cachetools(ttl: int, ops: Any) -> None:
    """Unpickling (and deep copying) rebuilds the expiry order by expiry time and expires, as
    cachetools' ``__setstate__`` does."""
    ours = compat.TTLCache(3, ttl, timer=AutoTimer())
    theirs = cachetools.TTLCache(3, ttl, timer=AutoTimer())
    ours.user_timer, theirs.user_timer = ours.timer._Timer__timer, theirs.timer._Timer__timer
    for op in ops:
        outcome(lambda op=op: apply(ours, op, True))
        outcome(lambda op=op: apply(theirs, op, True))
    for transform in (lambda c: pickle.loads(pickle.dumps(c)), copy.deepcopy, copy.copy):
        a, b = transform(ours), transform(theirs)
        assert ttl_state(a, True) == ttl_state(b, False)
        assert a.timer.time == b.timer.time
