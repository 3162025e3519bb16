"""The Python examples of the README and of docs/python-api.md, run as written on every backend,
each in a process of its own (the backend is chosen once, at import) and a directory of its own
(the snapshot examples write files)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any, List, Tuple

import pytest
from _backends import BACKEND_IDS

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
BACKEND_NAMES = sorted({name.split("-")[0] for name in BACKEND_IDS})


def python_blocks(doc: str) -> List[str]:
    """The code of every ```python block of ``doc`` (a path from the repository's root)."""
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        return re.findall(r"^```python\n(.*?)^```$", f.read(), re.S | re.M)


def run_example(code: str, backend: str, cwd: Any) -> Tuple[List[str], str]:
    """Runs ``code`` as a script on ``backend``; its stdout lines and stderr."""
    script = cwd / "example.py"
    script.write_text(code)
    env = dict(os.environ, ALPHAFORGE_CACHE_BACKEND=backend)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines(), done.stderr


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_the_readme_example_runs_on_every_backend(backend: str, tmp_path: Any) -> None:
    (example,) = python_blocks("README.md")
    # After the example: the snapshot it saved holds what it said, and loads into a new cache.
    check = (
        "again = afc.Cache(10, ttl=60.0)\n"
        "again.load('quotes.afcs')\n"
        "print(again.get(b'bar:AAPL:1m:0930'), sorted(again.keys()))\n"
    )
    lines, _ = run_example(example + "\n" + check, backend, tmp_path)
    # One get hit, then one hit and one miss in get_many: 2 of 3.
    assert lines[0] == f"{2 / 3} {backend}", lines
    # The quote lives 0.5 s: on a slow machine it may have expired before the save.
    assert lines[-1] in (
        "b'189.70,190.10,189.55,189.98' [b'bar:AAPL:1m:0930', b'quote:AAPL']",
        "b'189.70,190.10,189.55,189.98' [b'bar:AAPL:1m:0930']",
    ), lines


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_the_python_api_examples_run_on_every_backend(backend: str, tmp_path: Any) -> None:
    blocks = python_blocks("docs/python-api.md")
    packed = [b for b in blocks if "def load_bars" in b]
    snapshots = [b for b in blocks if "quotes.save" in b]
    compat = [b for b in blocks if "alphaforge_cache.compat" in b]
    assert len(packed) == len(snapshots) == len(compat) == 1 and len(blocks) == 3
    for i, code in enumerate(blocks):
        cwd = tmp_path / str(i)
        cwd.mkdir()
        lines, stderr = run_example(code, backend, cwd)
        assert stderr == ""
        if code in snapshots:
            # What its comments say it prints: the entry kept, then a value through the codec.
            assert lines == ["1", "1.0844"]
            assert {p.name for p in cwd.iterdir()} == {"example.py", "quotes.afcs", "objects.afcs"}
