"""Checks of "no permission", which root never gets: root reads and writes anything. As root, the
checks run in a forked child that drops to user and group nobody first (not in a subprocess: the
interpreter may live where nobody cannot run it, e.g. under /root); otherwise they run here."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import traceback
from typing import Any, Callable, Iterator, NamedTuple

import pytest

from alphaforge_cache import SnapshotFileError

#: User and group nobody.
NOBODY = 65534


def shared_temp_dir(prefix: str) -> str:
    """A fresh directory that user nobody may enter (mode 0755; mkdtemp makes it 0700)."""
    directory = tempfile.mkdtemp(prefix=prefix)
    os.chmod(directory, 0o755)
    return directory


def drop_to_nobody() -> None:
    """Makes this process user and group nobody, with no supplementary groups, for good."""
    os.setgroups([])  # first: without root, the groups could not be dropped any more
    os.setgid(NOBODY)  # as root: the real, effective and saved ids
    os.setuid(NOBODY)
    assert os.getresuid() == (NOBODY, NOBODY, NOBODY), os.getresuid()
    assert os.getresgid() == (NOBODY, NOBODY, NOBODY), os.getresgid()
    assert os.getgroups() == [], os.getgroups()
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:  # pragma: no cover - a failure
        raise AssertionError("root could be regained")


def as_nobody(checks: Callable[[], None]) -> None:
    """Runs ``checks()`` as an unprivileged user: here when this process is not root; as root,
    in a forked child that drops to user nobody first. The child prints what failed (its
    traceback) and exits with status 0 only if it dropped root and ``checks`` passed (a child
    that could not drop root fails, never passes); this asserts that status. The checks may
    make caches of their own in the child (the engine is fork-aware)."""
    if os.geteuid() != 0:
        checks()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            drop_to_nobody()
            checks()
            code = 0
        except BaseException:  # noqa: B036 - report anything (pytest's failures too), then leave
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)  # never back into the parent's test run
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):
        how = f"exited with status {os.WEXITSTATUS(status)}"
    else:
        how = f"was killed by signal {os.WTERMSIG(status)}"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
        f"the unprivileged child {how}: see its output"
    )


class NoPermissionPlaces(NamedTuple):
    """A snapshot nobody may read (``locked``, mode 000), and a directory nobody may write in
    (``readonly``, mode 0555) holding a snapshot (``previous``, whose bytes are
    ``previous_bytes``) and no file ``fresh``."""

    locked: str
    readonly: str
    previous: str
    fresh: str
    previous_bytes: bytes


@contextlib.contextmanager
def no_permission_places(prefix: str, save: Callable[[str], Any]) -> Iterator[NoPermissionPlaces]:
    """Makes the places of ``NoPermissionPlaces`` in a fresh directory (``save(path)`` writes
    the two snapshots), then removes them all."""
    directory = shared_temp_dir(prefix)
    readonly = os.path.join(directory, "readonly")
    locked = os.path.join(directory, "locked.afcs")
    previous = os.path.join(readonly, "previous.afcs")
    try:
        save(locked)
        os.chmod(locked, 0o000)
        os.mkdir(readonly)
        save(previous)
        os.chmod(readonly, 0o555)
        with open(previous, "rb") as f:
            previous_bytes = f.read()
        fresh = os.path.join(readonly, "new.afcs")
        yield NoPermissionPlaces(locked, readonly, previous, fresh, previous_bytes)
    finally:
        if os.path.isdir(readonly):
            os.chmod(readonly, 0o755)
        shutil.rmtree(directory)


def check_refused_without_permission(
    places: NoPermissionPlaces, cache: Any, unchanged: Callable[[], None]
) -> None:
    """(Run as nobody.) ``cache`` cannot load ``places.locked`` nor save over
    ``places.previous`` or to ``places.fresh``: each a ``SnapshotFileError`` of kind ``"io"``
    naming the path and "Permission denied", after which ``unchanged()`` holds, the previous
    snapshot is byte for byte what it was and the directory holds nothing else."""
    with pytest.raises(SnapshotFileError, match="Permission denied") as info:
        cache.load(places.locked)
    assert info.value.kind == "io" and places.locked in str(info.value), info.value
    unchanged()
    for target in (places.previous, places.fresh):
        with pytest.raises(SnapshotFileError, match="Permission denied") as info:
            cache.save(target)
        assert info.value.kind == "io" and target in str(info.value), info.value
        unchanged()
        with open(places.previous, "rb") as f:
            assert f.read() == places.previous_bytes, "the previous file changed"
        assert os.listdir(places.readonly) == ["previous.afcs"], "a file was left or made"
