"""``typed_usage.py``, the documented API as ``mypy --strict`` code uses it: it runs on every
backend, and (where mypy is installed; tox's ``type`` env checks it in any case) it
type-checks with the package under ``mypy --strict``."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from _backends import BACKEND_IDS, package_root

USAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "typed_usage.py")
BACKEND_NAMES = sorted({name.split("-")[0] for name in BACKEND_IDS})


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_the_typed_usage_runs(backend: str) -> None:
    env = dict(os.environ, ALPHAFORGE_CACHE_BACKEND=backend, PYTHONPATH=package_root())
    done = subprocess.run(
        [sys.executable, USAGE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", backend]


def test_the_typed_usage_type_checks_under_mypy_strict(tmp_path: Any) -> None:
    api = pytest.importorskip("mypy.api")
    package = os.path.join(package_root(), "alphaforge_cache")
    out, err, status = api.run(["--strict", "--cache-dir", str(tmp_path), package, USAGE])
    assert status == 0, out + err
