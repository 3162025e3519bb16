"""The README's Python example, run as written on every backend (in a process of its own, as the
backend is chosen once, at import)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from _backends import BACKEND_IDS

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def readme_example() -> str:
    with open(README, encoding="utf-8") as f:
        text = f.read()
    start = text.index("```python\n") + len("```python\n")
    return text[start : text.index("```\n", start)]


@pytest.mark.parametrize("backend", sorted({name.split("-")[0] for name in BACKEND_IDS}))
def test_the_readme_example_runs_on_every_backend(backend: str, tmp_path: Any) -> None:
    script = tmp_path / "example.py"
    # After the example: the snapshot it saved holds what it said, and loads into a new cache.
    script.write_text(
        readme_example()
        + "\nagain = afc.Cache(10, ttl=60.0)\n"
        + "again.load('quotes.afcs')\n"
        + "print(again.get(b'bar:AAPL:1m:0930'), sorted(again.keys()))\n"
    )
    env = dict(os.environ, ALPHAFORGE_CACHE_BACKEND=backend)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # One get hit, then one hit and one miss in get_many: 2 of 3.
    lines = done.stdout.splitlines()
    assert lines[0] == f"{2 / 3} {backend}", done.stdout
    # The quote lives 0.5 s: on a slow machine it may have expired before the save.
    assert lines[-1] in (
        "b'189.70,190.10,189.55,189.98' [b'bar:AAPL:1m:0930', b'quote:AAPL']",
        "b'189.70,190.10,189.55,189.98' [b'bar:AAPL:1m:0930']",
    ), done.stdout
    assert (tmp_path / "quotes.afcs").is_file()
