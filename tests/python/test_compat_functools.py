"""compat.lru_cache and compat.cache with functools' behaviour, in the style of CPython's own
tests of lru_cache (Lib/test/test_functools.py), and against functools itself as an oracle: the
same calls give the same results and the same cache_info() after every call."""

from __future__ import annotations

import builtins
import copy
import functools
import pickle
import random
import sys
import threading
import time
import types
import unittest.mock
import weakref
from typing import Any, Callable, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphaforge_cache import compat

# Both implementations side by side: each test runs on ours and on functools' C version.
IMPLS = [compat, functools]
IDS = ["compat", "functools"]


#: Whether functools' lru_cache is its C implementation (PyPy's is Python, whose 3.9 version
#: does not check that the function is callable).
C_FUNCTOOLS = not isinstance(functools.lru_cache()(len), types.FunctionType)


def since_39(module: Any) -> bool:
    """Whether ``module``'s lru_cache has what Python 3.9 added (``cache_parameters``, weak
    references): compat always has it, functools from 3.9 on."""
    return module is compat or sys.version_info >= (3, 9)


@pytest.fixture(params=IMPLS, ids=IDS)
def module(request: Any) -> Any:
    return request.param


# Module-level cached functions and methods, for pickling by reference.
@compat.lru_cache()
def cached_func(x: int, y: int) -> int:
    return 3 * x + y


class Holder:
    @compat.lru_cache()
    def cached_meth(self, x: int, y: int) -> int:
        return 3 * x + y

    @staticmethod
    @compat.lru_cache()
    def cached_staticmeth(x: int, y: int) -> int:
        return 3 * x + y


def test_lru(module: Any) -> None:
    def orig(x: int, y: int) -> int:
        return 3 * x + y

    f = module.lru_cache(maxsize=20)(orig)
    hits, misses, maxsize, currsize = f.cache_info()
    assert (maxsize, currsize) == (20, 0)
    domain = range(5)
    for _ in range(1000):
        x, y = random.choice(domain), random.choice(domain)
        assert f(x, y) == orig(x, y)
    hits, misses, maxsize, currsize = f.cache_info()
    assert hits > misses and hits + misses == 1000 and currsize == 20
    f.cache_clear()
    assert f.cache_info() == (0, 0, 20, 0)
    f(1, 2)
    f(1, 2)
    assert f.cache_info() == (1, 1, 20, 1)

    count = 0

    @module.lru_cache(0)
    def never() -> int:
        nonlocal count
        count += 1
        return 20

    assert never.cache_info().maxsize == 0
    for _ in range(5):
        assert never() == 20
    assert never.cache_info() == (0, 5, 0, 0) and count == 5

    @module.lru_cache(1)
    def one() -> int:
        nonlocal count
        count += 1
        return 20

    count = 0
    for _ in range(5):
        assert one() == 20
    assert one.cache_info() == (4, 1, 1, 1) and count == 1

    @module.lru_cache(2)
    def two(x: int) -> int:
        nonlocal count
        count += 1
        return x * 10

    count = 0
    for x in 7, 9, 7, 9, 7, 9, 8, 8, 8, 9, 9, 9, 8, 8, 8, 7:
        assert two(x) == x * 10
    assert two.cache_info() == (12, 4, 2, 2) and count == 4
    with pytest.raises(TypeError):
        module.lru_cache("hello")


def test_lru_no_args_decoration(module: Any) -> None:
    @module.lru_cache
    def square(x: int) -> int:
        return x**2

    assert list(map(square, [10, 20, 10])) == [100, 400, 100]
    assert square.cache_info() == (1, 2, 128, 2)
    if since_39(module):
        assert square.cache_parameters() == {"maxsize": 128, "typed": False}


def test_cache_is_unbounded(module: Any) -> None:
    if not hasattr(module, "cache"):  # pragma: no cover - functools < 3.9
        pytest.skip("functools.cache is Python 3.9+")

    @module.cache
    def fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    assert [fib(n) for n in range(16)] == [
        0,
        1,
        1,
        2,
        3,
        5,
        8,
        13,
        21,
        34,
        55,
        89,
        144,
        233,
        377,
        610,
    ]
    assert fib.cache_info() == (28, 16, None, 16)
    assert fib.cache_parameters() == {"maxsize": None, "typed": False}
    fib.cache_clear()
    assert fib.cache_info() == (0, 0, None, 0)


def test_lru_hash_only_once(module: Any) -> None:
    @module.lru_cache(maxsize=1)
    def f(x: Any, y: int) -> Any:
        return x * 3 + y

    mock_int = unittest.mock.Mock()
    mock_int.__mul__ = unittest.mock.Mock(return_value=15)
    mock_int.__hash__ = unittest.mock.Mock(return_value=999)
    assert f(mock_int, 1) == 16  # a miss: one hash
    assert mock_int.__hash__.call_count == 1
    assert f.cache_info() == (0, 1, 1, 1)
    assert f(mock_int, 1) == 16  # a hit: one more
    assert mock_int.__hash__.call_count == 2
    assert f.cache_info() == (1, 1, 1, 1)
    assert f(6, 2) == 20  # an eviction: none
    assert mock_int.__hash__.call_count == 2
    assert f(mock_int, 1) == 16  # a miss again: one
    assert mock_int.__hash__.call_count == 3
    assert f.cache_info() == (1, 3, 1, 1)


def test_lru_reentrancy_with_len(module: Any) -> None:
    # The cache must not call builtins.len, which may be the cached function itself.
    old_len = builtins.len
    try:
        builtins.len = module.lru_cache(4)(len)
        for i in [0, 0, 1, 2, 3, 3, 4, 5, 6, 1, 7, 2, 1]:
            assert len("abcdefghijklmn"[:i]) == i
    finally:
        builtins.len = old_len


def test_lru_star_arg_handling(module: Any) -> None:
    @module.lru_cache()
    def f(*args: Any) -> Any:
        return args

    assert f(1, 2) == (1, 2)
    assert f((1, 2)) == ((1, 2),)


def test_lru_type_error(module: Any) -> None:
    @module.lru_cache(maxsize=None)
    def infinite(o: Any) -> None:
        pass

    @module.lru_cache(maxsize=10)
    def limited(o: Any) -> None:
        pass

    @module.lru_cache(maxsize=0)
    def uncached(o: Any) -> None:
        pass

    with pytest.raises(TypeError):
        infinite([])
    with pytest.raises(TypeError):
        limited([])
    uncached([])  # no key is made without a cache
    assert infinite.cache_info() == (0, 0, None, 0)
    assert limited.cache_info() == (0, 0, 10, 0)
    assert uncached.cache_info() == (0, 1, 0, 0)


def test_lru_with_maxsize_none_and_negative(module: Any) -> None:
    @module.lru_cache(maxsize=None)
    def fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    assert fib(15) == 610
    assert fib.cache_info() == (13, 16, None, 16)

    @module.lru_cache(maxsize=-10)
    def eq(n: int) -> int:
        return n

    for _ in (0, 1):
        assert [eq(n) for n in range(150)] == list(range(150))
    assert eq.cache_info() == (0, 300, 0, 0)
    if since_39(module):
        assert eq.cache_parameters() == {"maxsize": 0, "typed": False}


def test_lru_with_exceptions(module: Any) -> None:
    for maxsize in (None, 128):

        @module.lru_cache(maxsize)
        def func(i: int) -> str:
            return "abc"[i]

        assert func(0) == "a"
        with pytest.raises(IndexError):
            func(15)
        assert func.cache_info().currsize == 1
        with pytest.raises(IndexError):
            func(15)  # exceptions are not cached
        assert func.cache_info().misses == 3


def test_lru_with_types(module: Any) -> None:
    for maxsize in (None, 128):

        @module.lru_cache(maxsize=maxsize, typed=True)
        def square(x: Any) -> Any:
            return x * x

        assert square(3) == 9 and type(square(3)) is type(9)
        assert square(3.0) == 9.0 and type(square(3.0)) is type(9.0)
        assert square(x=3) == 9 and square(x=3.0) == 9.0
        assert square.cache_info() == (2, 4, maxsize, 4)
        if since_39(module):
            assert square.cache_parameters() == {"maxsize": maxsize, "typed": True}


def test_untyped_keys_share_equal_arguments(module: Any) -> None:
    calls: List[Any] = []

    @module.lru_cache(maxsize=10)
    def f(x: Any) -> Any:
        calls.append(x)
        return x

    # One int or str argument is its own key; anything else is the argument tuple, so 1.0 and
    # True share an entry, while 1 (its own key) does not share with them (as in functools).
    for arg in (1, 1.0, True, "a", b"a", (1,), 1):
        f(arg)
    assert calls == [1, 1.0, "a", b"a", (1,)]


def test_lru_typed_is_not_recursive(module: Any) -> None:
    cached = module.lru_cache(typed=True)(repr)
    assert [cached(v) for v in (1, True, 1.0, 0, False, 0.0)] == [
        "1",
        "True",
        "1.0",
        "0",
        "False",
        "0.0",
    ]
    assert cached((1,)) == "(1,)"
    assert cached((True,)) == "(1,)"
    assert cached((1.0,)) == "(1,)"

    class T(tuple):  # type: ignore[type-arg]
        pass

    assert cached(T((1,))) == "(1,)"
    assert cached(T((True,))) == "(1,)"


def test_keyword_args_and_order(module: Any) -> None:
    @module.lru_cache(maxsize=10)
    def f(**kwargs: Any) -> Any:
        return list(kwargs.items())

    assert f(a=1, b=2) == [("a", 1), ("b", 2)]
    assert f(b=2, a=1) == [("b", 2), ("a", 1)]  # keyword order makes another key
    assert f.cache_info() == (0, 2, 10, 2)

    @module.lru_cache()
    def g(x: int) -> None:
        pass

    g(0)
    g(0, **{})  # an empty **kwargs is no keyword argument
    assert g.cache_info().hits == 1
    g(x=0)  # by keyword is another key
    assert g.cache_info().misses == 2


def test_lru_bug_35780(module: Any) -> None:
    once = True

    @module.lru_cache(maxsize=10)
    def f(x: int) -> str:
        nonlocal once
        rv = f".{x}."
        if x == 20 and once:
            once = False
            rv = f(x)
        return rv

    for x in range(15):
        assert f(x) == f".{x}."
    assert f.cache_info().currsize == 10
    assert f(20) == ".20."
    assert f.cache_info().currsize == 10


def test_recursive_call_storing_first_wins(module: Any) -> None:
    # A key stored while the function ran stays; the outer call returns its own result.
    inner: List[Any] = []

    @module.lru_cache(maxsize=4)
    def f(x: int, depth: int = 0) -> Any:
        if depth == 0 and x == 1:
            inner.append(f(1, 0) if False else f(1, 1))
        return object()

    first = f(1)
    assert f(1) is first


def test_need_for_rlock(module: Any) -> None:
    @module.lru_cache(maxsize=10)
    def test_func(x: Any) -> Any:
        return x

    class DoubleEq:
        def __init__(self, x: int) -> None:
            self.x = x

        def __hash__(self) -> int:
            return self.x

        def __eq__(self, other: Any) -> bool:
            if self.x == 2:
                test_func(DoubleEq(1))
            return bool(self.x == other.x)

    test_func(DoubleEq(1))
    test_func(DoubleEq(2))
    assert test_func(DoubleEq(2)) == DoubleEq(2)


def test_lru_cache_threaded(module: Any) -> None:
    n, m = 5, 11

    def orig(x: int, y: int) -> int:
        return 3 * x + y

    f = module.lru_cache(maxsize=n * m)(orig)
    start = threading.Event()

    def full(k: int) -> None:
        start.wait(10)
        for _ in range(m):
            assert f(k, 0) == orig(k, 0)

    def clear() -> None:
        start.wait(10)
        for _ in range(2 * m):
            f.cache_clear()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=full, args=[k]) for k in range(n)]
        for t in threads:
            t.start()
        start.set()
        for t in threads:
            t.join()
        hits, misses, maxsize, currsize = f.cache_info()
        assert misses == n and hits == m * n - misses and currsize == n

        f.cache_clear()
        start.clear()
        threads = [threading.Thread(target=full, args=[k]) for k in range(n)]
        threads.append(threading.Thread(target=clear))
        for t in threads:
            t.start()
        start.set()
        for t in threads:
            t.join()
        assert f.cache_info().currsize <= n
    finally:
        sys.setswitchinterval(old)


def test_lru_cache_threaded_same_arguments(module: Any) -> None:
    n, m = 5, 7
    start = threading.Barrier(n + 1)
    pause = threading.Barrier(n + 1)
    stop = threading.Barrier(n + 1)

    @module.lru_cache(maxsize=m * n)
    def f(x: int) -> int:
        pause.wait(10)
        return 3 * x

    assert f.cache_info() == (0, 0, m * n, 0)

    def test() -> None:
        for i in range(m):
            start.wait(10)
            assert f(i) == 3 * i
            stop.wait(10)

    threads = [threading.Thread(target=test) for _ in range(n)]
    for t in threads:
        t.start()
    for i in range(m):
        start.wait(10)
        stop.reset()
        pause.wait(10)
        start.reset()
        stop.wait(10)
        pause.reset()
        assert f.cache_info() == (0, (i + 1) * n, m * n, i + 1)
    for t in threads:
        t.join()


def test_lru_cache_threaded_small(module: Any) -> None:
    @module.lru_cache(maxsize=2)
    def f(x: int) -> int:
        time.sleep(0.01)
        return 3 * x

    errors: List[Any] = []

    def test(x: int) -> None:
        try:
            assert f(x) == 3 * x
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=test, args=(v,)) for v in [1, 2, 2, 3, 2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and f.cache_info().currsize <= 2


def test_hits_counted_exactly_under_threads(module: Any) -> None:
    @module.lru_cache(maxsize=16)
    def f(x: int) -> int:
        return x

    for x in range(8):
        f(x)
    per_thread = 20_000

    def work() -> None:
        for i in range(per_thread):
            f(i % 8)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert f.cache_info() == (4 * per_thread, 8, 16, 8)


def test_methods(module: Any) -> None:
    class X(int):
        f_cnt = 0

        @module.lru_cache(2)
        def f(self, x: int) -> int:
            self.f_cnt += 1
            return x * 10 + self

    a, b, c = X(5), X(7), X(11)
    assert a.f(1) == 15 and a.f_cnt == 1
    assert a.f(1) == 15 and a.f_cnt == 1
    assert b.f(1) == 17 and b.f_cnt == 1
    assert c.f(1) == 21 and c.f_cnt == 1
    assert a.f(1) == 15 and a.f_cnt == 2  # evicted by b and c
    assert X.f.cache_info() == (1, 4, 2, 2)


def test_classmethod_and_staticmethod(module: Any) -> None:
    class A:
        @classmethod
        @module.lru_cache
        def cm(cls, x: int) -> Any:
            return (cls, x)

        @staticmethod
        @module.lru_cache
        def sm(x: int) -> int:
            return x * 2

    assert A.cm(1) == (A, 1) and A().cm(1) == (A, 1)
    assert A.sm(2) == 4 and A().sm(2) == 4


def test_pickle_and_copy_by_reference() -> None:
    for f in (cached_func, Holder.cached_meth, Holder.cached_staticmeth):
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            assert pickle.loads(pickle.dumps(f, proto)) is f
        assert copy.copy(f) is f
        assert copy.deepcopy(f) is f
    part = compat.lru_cache(2)(functools.partial(lambda x, y: 3 * x + y, 2))
    assert copy.copy(part) is part and copy.deepcopy(part) is part
    assert part(1) == 7


def test_wrapper_attributes(module: Any) -> None:
    def f(zomg: "zomg_annotation") -> int:  # type: ignore[name-defined]  # noqa: F821
        """f doc string"""
        return 42

    f.extra = "kept"  # type: ignore[attr-defined]
    g = module.lru_cache()(f)
    for attr in functools.WRAPPER_ASSIGNMENTS:
        assert getattr(g, attr) == getattr(f, attr)
    assert g.__wrapped__ is f
    assert g.extra == "kept"
    if since_39(module):
        assert weakref.ref(g)() is g
    if module is compat or C_FUNCTOOLS:
        with pytest.raises(TypeError):
            module.lru_cache(maxsize=10)(42)


def test_stacked_decorators_keep_their_own_statistics(module: Any) -> None:
    if module is functools and not C_FUNCTOOLS:
        pytest.skip("the Python functools copies the inner wrapper's cache_info to the outer")
    inner = module.lru_cache(maxsize=3)(lambda x: x)
    outer = module.lru_cache(maxsize=5)(inner)
    outer(1)
    outer(1)
    assert outer.cache_info() == (1, 1, 5, 1)
    assert inner.cache_info() == (0, 1, 3, 1)


CALLS = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 1.0, True, "a", b"a", (1,), None, 2.5]),
        st.sampled_from([(), ("k",), ("j", "k")]),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    maxsize=st.sampled_from([None, 0, 1, 2, 3, 8]),
    typed=st.booleans(),
    calls=CALLS,
)
def test_same_hits_and_misses_as_functools(maxsize: Any, typed: bool, calls: Any) -> None:
    results: List[List[Any]] = [[], []]
    wrappers: List[Callable[..., Any]] = []
    for impl, log in zip(IMPLS, results):

        def target(*args: Any, _log: List[Any] = log, **kwargs: Any) -> Any:
            _log.append(("call", args, kwargs))
            return (args, tuple(kwargs.items()))

        wrappers.append(impl.lru_cache(maxsize=maxsize, typed=typed)(target))
    for arg, kw_names, clear in calls:
        for wrapper, log in zip(wrappers, results):
            kwargs = {name: arg for name in kw_names}
            log.append(wrapper(arg, **kwargs))
            log.append(tuple(wrapper.cache_info()))  # type: ignore[attr-defined]
            if clear and arg == 2.5:
                wrapper.cache_clear()  # type: ignore[attr-defined]
    assert results[0] == results[1]
