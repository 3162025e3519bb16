"""``alphaforge_cache.BACKEND`` and the ``ALPHAFORGE_CACHE_BACKEND`` switch (in subprocesses, since
the choice is made at import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Dict

import pytest
from _backends import NATIVE_REQUIRED, package_root

import alphaforge_cache

PROBE = """
import json
try:
    import alphaforge_cache as m
except ImportError as error:
    print(json.dumps({"import_error": str(error)}))
else:
    print(json.dumps({"backend": m.BACKEND, "cache": m.Cache.backend,
                      "native": m.NativeCache is not None,
                      "works": m.Cache(2).get_many([b"a"]) == [None]}))
"""


def probe(policy: "str | None") -> Dict[str, object]:
    env = dict(os.environ)
    env.pop("ALPHAFORGE_CACHE_BACKEND", None)
    if policy is not None:
        env["ALPHAFORGE_CACHE_BACKEND"] = policy
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root(), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_backend_constant() -> None:
    assert alphaforge_cache.BACKEND in ("python", "native")
    assert alphaforge_cache.BACKEND == alphaforge_cache.Cache.backend
    assert alphaforge_cache.PythonCache.backend == "python"
    if alphaforge_cache.NativeCache is not None:
        assert alphaforge_cache.NativeCache.backend == "native"
    if os.environ.get("ALPHAFORGE_CACHE_BACKEND", "").strip().lower() != "python":
        expected = "native" if alphaforge_cache.NativeCache is not None else "python"
        assert alphaforge_cache.BACKEND == expected


def test_default_prefers_native() -> None:
    result = probe(None)
    assert result["works"] is True
    assert result["backend"] == result["cache"] == ("native" if result["native"] else "python")
    if alphaforge_cache.NativeCache is not None:
        assert result["native"] is True


def test_forced_python() -> None:
    result = probe("python")
    assert result == {"backend": "python", "cache": "python", "native": False, "works": True}


def test_bogus_policy_raises_import_error() -> None:
    result = probe("bogus")
    assert "import_error" in result
    assert "ALPHAFORGE_CACHE_BACKEND" in str(result["import_error"])


def test_forced_native() -> None:
    result = probe("native")
    native_built = probe(None)["native"]
    if native_built:
        assert result == {"backend": "native", "cache": "native", "native": True, "works": True}
    else:
        assert "import_error" in result
        assert "native" in str(result["import_error"])


def test_native_present_when_required() -> None:
    """CI sets ALPHAFORGE_CACHE_REQUIRE_NATIVE=1 where the native backend must have been built."""
    if not NATIVE_REQUIRED:
        pytest.skip("ALPHAFORGE_CACHE_REQUIRE_NATIVE is not 1")
    assert alphaforge_cache.NativeCache is not None, "the native backend was not built/importable"
    assert alphaforge_cache.BACKEND == "native"
    assert probe(None)["backend"] == "native"
