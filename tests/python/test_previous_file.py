"""A save holds a large file it replaces across the rename and frees it on a thread of its own
(``alphaforge_cache._previous_file``, the twin of the engine's ``PreviousFile``)."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, List, Set

import pytest

from alphaforge_cache import SnapshotError, _previous_file
from alphaforge_cache import _snapshot_format as fmt

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(os, "O_PATH"),
    reason="the previous file is held with O_PATH, on Linux only",
)

ENTRIES = [fmt.Entry(b"k%d" % i, b"v" * 40, None, None) for i in range(100)]


def open_descriptors() -> Set[str]:
    return set(os.listdir("/proc/self/fd"))


@linux_only
def test_only_a_large_regular_file_is_held(tmp_path: Any) -> None:
    target = tmp_path / "cache.afcs"
    assert _previous_file.hold(str(target)) is None  # no file
    target.write_bytes(b"x" * 4096)
    assert _previous_file.hold(str(target)) is None  # small
    assert _previous_file.hold(str(tmp_path)) is None  # a directory
    large = tmp_path / "large.bin"
    large.write_bytes(b"y" * _previous_file.HOLD_MIN_BYTES)
    link = tmp_path / "link.afcs"
    link.symlink_to(large)
    # A link is replaced by the rename, not its target.
    assert _previous_file.hold(str(link)) is None
    fd = _previous_file.hold(str(large))
    assert fd is not None
    try:
        assert os.fstat(fd).st_ino == os.stat(large).st_ino
    finally:
        os.close(fd)


@linux_only
def test_a_save_over_a_large_file_hands_the_replaced_file_to_a_thread(
    tmp_path: Any, monkeypatch: Any
) -> None:
    target = tmp_path / "cache.afcs"
    target.write_bytes(b"z" * _previous_file.HOLD_MIN_BYTES)
    before = os.stat(target)
    released: List[os.stat_result] = []

    def release(fd: int) -> None:
        released.append(os.fstat(fd))
        os.close(fd)

    monkeypatch.setattr(_previous_file, "release_in_background", release)
    fmt.write(str(target), ENTRIES)
    assert fmt.read(str(target))[1] == ENTRIES
    assert [(s.st_ino, s.st_size, s.st_nlink) for s in released] == [
        (before.st_ino, before.st_size, 0)
    ]


@linux_only
def test_the_thread_frees_the_replaced_file(tmp_path: Any) -> None:
    target = tmp_path / "cache.afcs"
    target.write_bytes(b"z" * _previous_file.HOLD_MIN_BYTES)
    descriptors = open_descriptors()
    fmt.write(str(target), ENTRIES)
    for thread in [t for t in threading.enumerate() if t.name == "afc-release"]:
        thread.join()
    assert open_descriptors() <= descriptors  # none left open (another may have closed)
    assert fmt.read(str(target))[1] == ENTRIES


@linux_only
def test_a_failed_rename_closes_the_held_file(tmp_path: Any, monkeypatch: Any) -> None:
    target = tmp_path / "cache.afcs"
    previous = b"p" * _previous_file.HOLD_MIN_BYTES
    target.write_bytes(previous)
    descriptors = open_descriptors()

    def refuse(src: Any, dst: Any) -> None:
        raise PermissionError(13, "refused by the test")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(SnapshotError, match="cannot rename the temporary file over the target"):
        fmt.write(str(target), ENTRIES)
    monkeypatch.undo()
    assert open_descriptors() <= descriptors  # none left open (another may have closed)
    assert target.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.afcs"]
