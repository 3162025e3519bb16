"""compat.LRUCache and compat.TTLCache as cachetools documents its caches (the behaviour its own
test suite checks for every cache), plus the points the compat issue lists: key equality as in a
dict, values by identity, read-only maxsize/currsize, getsizeof, "value too large" leaving the
cache unchanged, popitem, __missing__, the mutable mapping protocol, ==, repr, copy, deepcopy,
pickling and generic aliases. TTLCache runs here with a timer that never moves (ttl infinite).
"""

from __future__ import annotations

import copy
import math
import pickle
import sys
from typing import Any, Callable

import pytest

from alphaforge_cache import compat


class FrozenTimer:
    def __init__(self) -> None:
        self.time = 0

    def __call__(self) -> int:
        return self.time


class TTLTestCache(compat.TTLCache):  # type: ignore[type-arg]
    """A TTLCache whose items never expire (the generic mapping tests run on it)."""

    def __init__(self, maxsize: Any, ttl: Any = math.inf, **kwargs: Any) -> None:
        compat.TTLCache.__init__(self, maxsize, ttl=ttl, timer=FrozenTimer(), **kwargs)


CACHES = [compat.LRUCache, TTLTestCache]


@pytest.fixture(params=CACHES, ids=["LRUCache", "TTLCache"])
def Cache(request: Any) -> Callable[..., Any]:  # noqa: N802 - a class, named as cachetools'
    return request.param  # type: ignore[no-any-return]


def test_defaults(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=1)
    assert len(cache) == 0
    assert cache.maxsize == 1
    assert cache.currsize == 0
    assert cache.getsizeof(None) == 1
    assert cache.getsizeof("") == 1
    assert cache.getsizeof(0) == 1
    assert repr(cache).startswith(type(cache).__name__)


def test_insert_evicts(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=2)
    cache.update({1: 1, 2: 2})
    assert (len(cache), cache[1], cache[2]) == (2, 1, 2)
    cache[3] = 3
    assert (len(cache), cache[3]) == (2, 3)
    assert 1 in cache or 2 in cache
    cache[4] = 4
    assert (len(cache), cache[4]) == (2, 4)
    assert 1 in cache or 2 in cache or 3 in cache


def test_update(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=2)
    cache.update({1: 1, 2: 2})
    cache.update({1: 1, 2: 2})
    assert (len(cache), cache[1], cache[2]) == (2, 1, 2)
    cache.update({1: "a", 2: "b"})
    assert (len(cache), cache[1], cache[2]) == (2, "a", "b")


def test_delete(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=2)
    cache.update({1: 1, 2: 2})
    del cache[2]
    assert (len(cache), cache[1]) == (1, 1)
    assert 2 not in cache
    del cache[1]
    assert len(cache) == 0
    with pytest.raises(KeyError):
        del cache[1]
    with pytest.raises(KeyError) as info:
        del cache[(1, 2)]
    assert info.value.args == ((1, 2),)  # the key itself, even a tuple
    assert len(cache) == 0


def test_pop(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=2)
    cache.update({1: 1, 2: 2})
    assert cache.pop(2) == 2
    assert len(cache) == 1
    assert cache.pop(1) == 1
    assert len(cache) == 0
    for key in (2, 1, 0):
        with pytest.raises(KeyError):
            cache.pop(key)
        assert cache.pop(key, None) is None


def test_popitem(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=2)
    cache.update({1: 1, 2: 2})
    assert cache.popitem() == (1, 1)
    assert cache.popitem() == (2, 2)
    with pytest.raises(KeyError) as info:
        cache.popitem()
    assert info.value.args == (f"{type(cache).__name__} is empty",)
    # As MutableMapping.popitem: no exception context.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_popitem_is_least_recently_used(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=3)
    cache.update({1: 1, 2: 2, 3: 3})
    cache[1]
    cache.get(2)
    assert cache.popitem() == (3, 3)
    cache[4] = 4
    assert cache.popitem() == (1, 1)
    assert cache.popitem() == (2, 2)


def test_missing(Cache: Any) -> None:  # noqa: N803
    class DefaultCache(Cache):  # type: ignore[misc,valid-type]
        def __missing__(self, key: Any) -> Any:
            self[key] = key
            return key

    cache = DefaultCache(maxsize=2)
    assert (cache.currsize, cache.maxsize, len(cache)) == (0, 2, 0)
    assert (cache[1], cache[2], len(cache)) == (1, 2, 2)
    assert cache[3] == 3
    assert len(cache) == 2 and 3 in cache
    assert (1 in cache) != (2 in cache)
    assert cache[4] == 4 and 4 in cache and len(cache) == 2
    # __missing__ is not called by anything but __getitem__.
    assert cache.get(4) == 4
    assert cache.get(5) is None
    assert cache.get(5, 25) == 25
    assert len(cache) == 2
    assert cache.pop(4) == 4
    with pytest.raises(KeyError):
        cache.pop(5)
    assert cache.pop(5, None) is None
    assert cache.pop(5, 25) == 25
    assert len(cache) == 1
    cache.clear()
    cache[1] = 2
    assert cache.setdefault(1) == 2
    assert cache.setdefault(1, 1) == 2
    assert cache.setdefault(2, 4) == 4
    assert cache.setdefault(2, None) == 4
    assert cache.setdefault(3) is None
    assert len(cache) == 2 and 3 in cache


def test_missing_getsizeof(Cache: Any) -> None:  # noqa: N803
    class DefaultCache(Cache):  # type: ignore[misc,valid-type]
        def __missing__(self, key: Any) -> Any:
            try:
                self[key] = key
            except ValueError:
                pass  # not stored
            return key

    cache = DefaultCache(maxsize=2, getsizeof=lambda x: x)
    assert (cache[1], len(cache), cache.currsize) == (1, 1, 1)
    assert (cache[2], len(cache), cache.currsize) == (2, 1, 2)
    assert 1 not in cache and 2 in cache
    assert (cache[3], len(cache), cache.currsize) == (3, 1, 2)  # too large: not stored
    assert (cache[1], len(cache), cache.currsize) == (1, 1, 1)
    assert cache.popitem() == (1, 1)


def check_getsizeof(cache: Any) -> None:
    assert (cache.currsize, cache.maxsize) == (0, 3)
    assert [cache.getsizeof(v) for v in (1, 2, 3)] == [1, 2, 3]
    cache.update({1: 1, 2: 2})
    assert (len(cache), cache.currsize, cache[1], cache[2]) == (2, 3, 1, 2)
    cache[1] = 2  # grows: the least recently used (2) goes
    assert (len(cache), cache.currsize, cache[1]) == (1, 2, 2)
    assert 2 not in cache
    cache.update({1: 1, 2: 2})
    assert (len(cache), cache.currsize) == (2, 3)
    cache[3] = 3
    assert (len(cache), cache.currsize, cache[3]) == (1, 3, 3)
    assert 1 not in cache and 2 not in cache
    for key in (3, 4):
        with pytest.raises(ValueError, match="value too large"):
            cache[key] = 4
        assert (len(cache), cache.currsize, cache[3]) == (1, 3, 3)  # unchanged


def test_getsizeof_param(Cache: Any) -> None:  # noqa: N803
    check_getsizeof(Cache(maxsize=3, getsizeof=lambda x: x))


def test_getsizeof_subclass(Cache: Any) -> None:  # noqa: N803
    class SizedCache(Cache):  # type: ignore[misc,valid-type]
        def getsizeof(self, value: Any) -> Any:
            return value

    check_getsizeof(SizedCache(maxsize=3))


def test_negative_size_and_maxsize(Cache: Any) -> None:  # noqa: N803
    with pytest.raises(ValueError, match="maxsize must be non-negative"):
        Cache(maxsize=-1)
    cache = Cache(maxsize=3, getsizeof=lambda x: x)
    cache[1] = 1
    with pytest.raises(ValueError, match="value size must be non-negative"):
        cache[2] = -1
    assert list(cache.items()) == [(1, 1)] and cache.currsize == 1


def test_maxsize_zero_stores_nothing(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=0)
    with pytest.raises(ValueError, match="value too large"):
        cache[1] = 1
    assert len(cache) == 0 and cache.currsize == 0


def test_float_and_infinite_maxsize(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=2.5)
    cache.update({1: 1, 2: 2, 3: 3})
    assert list(cache) == [2, 3]
    unbounded = Cache(maxsize=math.inf)
    unbounded.update((i, i) for i in range(1000))
    assert len(unbounded) == 1000


def test_maxsize_currsize_read_only(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=2)
    with pytest.raises(AttributeError):
        cache.maxsize = 3
    with pytest.raises(AttributeError):
        cache.currsize = 3


def test_keys_compare_as_in_a_dict(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=10)
    cache[1] = "one"
    cache[1.0] = "float"
    cache[True] = "bool"
    assert len(cache) == 1
    assert list(cache) == [1]  # the first key object stays, as in a dict
    assert cache[1] == cache[1.0] == cache[True] == "bool"
    cache[(1, "a")] = "t"
    assert cache[(1.0, "a")] == "t"
    with pytest.raises(TypeError):
        cache[[1]] = 1
    with pytest.raises(TypeError):
        cache.get([1])
    with pytest.raises(TypeError):
        [1] in cache  # noqa: B015


def test_values_by_identity(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=3)
    value = [1, 2]
    cache["k"] = value
    assert cache["k"] is value
    assert cache.get("k") is value
    assert cache.pop("k") is value
    none = Cache(maxsize=3)
    none["n"] = None
    assert "n" in none and none["n"] is None and none.get("n", 5) is None


def test_mapping_protocol(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=5)
    cache.update([("a", 1), ("b", 2)], c=3)
    assert list(cache.keys()) == ["a", "b", "c"]
    assert list(cache.values()) == [1, 2, 3]
    assert list(cache.items()) == [("a", 1), ("b", 2), ("c", 3)]
    assert "a" in cache.keys() and ("a", 1) in cache.items() and 1 in cache.values()
    assert cache == {"a": 1, "b": 2, "c": 3}
    assert cache != {"a": 1}
    assert cache.setdefault("d", 4) == 4
    cache.clear()
    assert len(cache) == 0 and cache.currsize == 0 and list(cache) == []


def test_iteration_is_insertion_order(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=3)
    cache.update({1: 1, 2: 2, 3: 3})
    cache[1]
    cache[2] = 22  # an update keeps its place
    assert list(cache) == [1, 2, 3]
    cache[4] = 4  # evicts 3, the least recently used
    assert list(cache) == [1, 2, 4]
    assert repr(cache) == f"{type(cache).__name__}({{1: 1, 2: 22, 4: 4}}, maxsize=3, currsize=3)"


def test_repr_of_a_cache_holding_itself(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=2)
    cache[1] = cache
    name = type(cache).__name__
    assert (
        repr(cache)
        == f"{name}({{1: {name}({{...}}, maxsize=2, currsize=1)}}, maxsize=2, currsize=1)"
    )


def test_equality(Cache: Any) -> None:  # noqa: N803
    a, b = Cache(maxsize=3), Cache(maxsize=5)
    a.update({1: 1, 2: 2})
    b.update({2: 2, 1: 1})
    assert a == b and b == a
    b[3] = 3
    assert a != b
    assert a != [1, 2]
    with pytest.raises(TypeError):
        hash(a)


def test_copy(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=3)
    cache.update({1: [1], 2: [2]})
    cache.note = "shared"
    cache[1]
    clone = copy.copy(cache)
    assert clone == cache and clone is not cache
    assert clone[2] is cache[2]  # a shallow copy
    assert clone.note == "shared"
    clone[3] = 3
    clone[4] = 4  # evicts 1 in the clone only (== read 1, then 2)
    assert list(clone) == [2, 3, 4] and list(cache) == [1, 2]


def test_deepcopy(Cache: Any) -> None:  # noqa: N803
    cache = Cache(maxsize=3)
    cache.update({1: [1], 2: [2]})
    cache[1]
    clone = copy.deepcopy(cache)
    assert clone == cache
    assert clone[2] is not cache[2] and clone[2] == [2]
    clone[3] = 3
    clone[4] = 4
    # == read every item (1, then 2), then 2 again: 1 was the least recently used.
    assert list(clone) == [2, 3, 4] and list(cache) == [1, 2]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle(Cache: Any, protocol: int) -> None:  # noqa: N803
    if Cache is TTLTestCache:
        Cache = PickledTTLCache  # noqa: N806 - a TTLCache whose timer pickles
    source = Cache(maxsize=2)
    source.update({1: 1, 2: 2})
    source[1]
    cache = pickle.loads(pickle.dumps(source, protocol))
    assert cache == source
    assert (len(cache), cache[2], cache[1]) == (2, 2, 1)
    cache[3] = 3  # 2 was read before 1 above: 2 goes
    assert (len(cache), cache[3]) == (2, 3) and 2 not in cache
    assert cache == pickle.loads(pickle.dumps(cache, protocol))


class PickledTTLCache(compat.TTLCache):  # type: ignore[type-arg]
    def __init__(self, maxsize: Any) -> None:
        compat.TTLCache.__init__(self, maxsize, ttl=math.inf)


def test_pickle_sizes_and_large_caches(Cache: Any) -> None:  # noqa: N803
    if Cache is TTLTestCache:
        Cache = PickledTTLCache  # noqa: N806
    for n in (0, 1, sys.getrecursionlimit() * 2):
        source = Cache(maxsize=n)
        source.update((i, i) for i in range(n))
        cache = pickle.loads(pickle.dumps(source))
        assert len(cache) == n and cache == source
    sized = compat.LRUCache(10, getsizeof=len)
    sized["a"] = "xyz"
    loaded = pickle.loads(pickle.dumps(sized))
    assert loaded.currsize == 3 and loaded.getsizeof is len


def test_generic_alias(Cache: Any) -> None:  # noqa: N803
    for cls in (compat.LRUCache, compat.TTLCache):
        alias = cls[str, int]
        assert alias.__origin__ is cls  # type: ignore[attr-defined]
        assert alias.__args__ == (str, int)  # type: ignore[attr-defined]
        instance = compat.LRUCache[str, int](3)
        assert isinstance(instance, compat.LRUCache)


def test_weakref_and_attributes(Cache: Any) -> None:  # noqa: N803
    import weakref

    cache = Cache(maxsize=2)
    assert weakref.ref(cache)() is cache
    cache.anything = 1  # instances take attributes, as cachetools' do
    assert cache.anything == 1


def test_subclass_popitem_hook_sees_every_eviction(Cache: Any) -> None:  # noqa: N803
    evicted = []

    class Logged(Cache):  # type: ignore[misc,valid-type]
        def popitem(self) -> Any:
            key, value = super().popitem()
            evicted.append((key, value))
            return key, value

    cache = Logged(maxsize=2)
    cache.update({1: 1, 2: 2, 3: 3})
    cache[2]
    cache[4] = 4
    assert evicted == [(1, 1), (3, 3)]
    assert list(cache) == [2, 4]


def test_subclass_getitem_hook_is_used_by_get(Cache: Any) -> None:  # noqa: N803
    calls = []

    class Counting(Cache):  # type: ignore[misc,valid-type]
        def __getitem__(self, key: Any) -> Any:
            calls.append(key)
            return super().__getitem__(key)

    cache = Counting(maxsize=2)
    cache[1] = 1
    assert cache.get(1) == 1 and cache.get(2) is None
    assert cache.pop(1) == 1 and cache.setdefault(3, 3) == 3
    assert calls == [1, 1]  # get and pop read through __getitem__, as in cachetools


def test_lru_cache_order() -> None:
    cache = compat.LRUCache(maxsize=2)
    cache[1] = 1
    cache[2] = 2
    cache[3] = 3
    assert len(cache) == 2 and (cache[2], cache[3]) == (2, 3) and 1 not in cache
    cache[2]
    cache[4] = 4
    assert len(cache) == 2 and (cache[2], cache[4]) == (2, 4) and 3 not in cache
    cache[5] = 5
    assert len(cache) == 2 and (cache[4], cache[5]) == (4, 5) and 2 not in cache


def test_lru_getsizeof_evicts_least_recent_first() -> None:
    cache = compat.LRUCache(maxsize=3, getsizeof=lambda x: x)
    cache[1] = 1
    cache[2] = 2
    assert (len(cache), cache.currsize) == (2, 3)
    cache[3] = 3
    assert (len(cache), cache[3]) == (1, 3)
    with pytest.raises(ValueError):
        cache[4] = 4
    assert (len(cache), cache[3]) == (1, 3)
