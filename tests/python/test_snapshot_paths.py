"""``save`` and ``load`` take a path as ``str``, ``bytes`` or an ``os.PathLike`` of either, on
``Cache`` and ``PackedCache``, every backend (``save`` with a ``bytes`` path used to fail with
``os.path``'s "Can't mix strings and bytes in path components", except on the native
``PackedCache``, while ``load`` took it everywhere); anything else is a ``TypeError``."""

from __future__ import annotations

import os
import pathlib
from typing import Any, Callable, List

import pytest

import alphaforge_cache


class BytesPath:
    """An ``os.PathLike`` whose ``__fspath__`` gives ``bytes``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __fspath__(self) -> bytes:
        return os.fsencode(self.path)


PATHS = {
    "str": str,
    "bytes": os.fsencode,
    "pathlib": pathlib.Path,
    "bytes PathLike": BytesPath,
}

PACKED: List[Any] = [alphaforge_cache.PythonPackedCache]
PACKED_IDS = ["python"]
if alphaforge_cache.NativePackedCache is not None:
    PACKED.append(alphaforge_cache.NativePackedCache)
    PACKED_IDS.append("native")


@pytest.mark.parametrize("kind", sorted(PATHS))
def test_a_cache_saves_and_loads_every_kind_of_path(
    make_cache: Any, tmp_path: Any, kind: str
) -> None:
    path: Callable[[str], Any] = PATHS[kind]
    name = str(tmp_path / "c.afcs")
    cache = make_cache()
    cache.put(b"k", b"v")
    assert cache.save(path(name)).entries == 1
    other = make_cache()
    assert other.load(path(name)).entries_kept == 1
    assert other.items() == [(b"k", b"v")]


@pytest.mark.parametrize("kind", sorted(PATHS))
@pytest.mark.parametrize("packed_cache", PACKED, ids=PACKED_IDS)
def test_a_packed_cache_saves_and_loads_every_kind_of_path(
    packed_cache: Any, tmp_path: Any, kind: str
) -> None:
    path: Callable[[str], Any] = PATHS[kind]
    name = str(tmp_path / "p.afcs")
    cache = packed_cache(4)
    cache.put(b"k", b"v")
    assert cache.save(path(name)).entries == 1
    other = packed_cache(4)
    assert other.load(path(name)).entries_kept == 1
    assert other.get(b"k") == b"v"
    cache.close()
    other.close()


def test_a_bad_path_is_a_type_error_naming_what_is_taken(make_cache: Any, tmp_path: Any) -> None:
    cache = make_cache()
    for call in (cache.save, cache.load):
        with pytest.raises(TypeError, match="expected str, bytes or os.PathLike object, not int"):
            call(3)


def test_a_bad_file_named_by_a_bytes_path_is_named_as_text(make_cache: Any, tmp_path: Any) -> None:
    name = str(tmp_path / "missing.afcs")
    with pytest.raises(alphaforge_cache.SnapshotFileError) as raised:
        make_cache().load(os.fsencode(name))
    assert raised.value.kind == "io"
    assert f"snapshot {name}:" in str(raised.value)


@pytest.mark.parametrize("length", [220, 250, 255])
def test_a_save_to_the_longest_file_names_works_and_leaves_no_temporary_file(
    make_cache: Any, tmp_path: Any, length: int
) -> None:
    # The temporary file, .NAME.PID.N.tmp, is named within 255 bytes (NAME cut short, between
    # characters), as the engine names it: a valid target name of up to 255 bytes saves.
    stem = "é" * ((length - 5) // 2) + "x" * ((length - 5) % 2)
    name = stem + ".afcs"
    assert len(os.fsencode(name)) == length
    cache = make_cache()
    cache.put(b"k", b"v")
    assert cache.save(tmp_path / name).entries == 1
    assert os.listdir(tmp_path) == [name]
    other = make_cache()
    assert other.load(tmp_path / name).entries_kept == 1
    for packed_cache in PACKED:
        packed = packed_cache(4)
        packed.put(b"p", b"v")
        packed.save(tmp_path / name)
        assert os.listdir(tmp_path) == [name]
        assert other.load(tmp_path / name).entries_kept == 1 and other.items() == [(b"p", b"v")]
        packed.close()
