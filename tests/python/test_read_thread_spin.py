"""``ALPHAFORGE_CACHE_SPIN_US``: how long the engine's read thread (native backend) spins for the
next hand-over of reads before it parks. Each case runs in a subprocess, since the thread reads
the variable once, when it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict, Optional

import pytest
from _backends import package_root

import alphaforge_cache

pytestmark = [
    pytest.mark.skipif(alphaforge_cache.NativeCache is None, reason="needs the native backend"),
    pytest.mark.skipif(
        not os.path.isdir("/proc/self/task"), reason="needs Linux's per-thread /proc"
    ),
]

# Bursts of reads with pauses between them: each get_many hands its reads over, the thread
# replays them (a few microseconds) and then waits for the next hand-over, 1 ms later, spinning
# or parked. Reports the read thread's CPU time (schedstat, in ns) and the wall time.
PROBE = """
import json, os, time
import alphaforge_cache as m

def read_thread_cpu_ns():
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/comm") as f:
            if f.read().startswith("alphaforge-cach"):
                with open(f"/proc/self/task/{task}/schedstat") as f:
                    return int(f.read().split()[0])
    return None

keys = [b"key-%04d" % i for i in range(100)]
cache = m.NativeCache(1000, mode="bytes")
cache.put_many([(k, b"v") for k in keys])
warm_up = 5
for _ in range(warm_up):
    cache.get_many(keys)  # starts the read thread (a hand-over every 256 reads or sooner)
time.sleep(0.05)
cpu0, wall0 = read_thread_cpu_ns(), time.monotonic_ns()
if cpu0 is None:  # this build replays every read at once: no such thread
    print(json.dumps({"no_read_thread": True}))
    raise SystemExit(0)
rounds = 300
for _ in range(rounds):
    assert cache.get_many(keys) == [b"v"] * len(keys)
    time.sleep(0.001)
cpu1, wall1 = read_thread_cpu_ns(), time.monotonic_ns()
print(json.dumps({"cpu_ns": cpu1 - cpu0, "wall_ns": wall1 - wall0,
                  "hits": cache.stats().hits, "expected_hits": (warm_up + rounds) * len(keys)}))
"""


def run_probe(spin: Optional[str]) -> Dict[str, Any]:
    env = dict(os.environ)
    env.pop("ALPHAFORGE_CACHE_SPIN_US", None)
    if spin is not None:
        env["ALPHAFORGE_CACHE_SPIN_US"] = spin
    env["ALPHAFORGE_CACHE_BACKEND"] = "native"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root(), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: Dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result.get("no_read_thread"):
        pytest.skip("this build replays reads at once: no read thread to set")
    result["stderr"] = done.stderr
    return result


def test_a_zero_spin_parks_the_read_thread_between_bursts() -> None:
    parked = run_probe("0")
    spinning = run_probe("2000")  # spins through every 1 ms pause
    for result in (parked, spinning):
        assert result["hits"] == result["expected_hits"]  # every read replayed, either way
        assert result["stderr"] == ""
    parked_cpu, spinning_cpu = parked["cpu_ns"], spinning["cpu_ns"]
    # Parked, the thread only replays (a few microseconds per burst: ~0.6 % of the wall time
    # here); with the default spin of 200 us per 1 ms pause it would be ~20 %, spinning
    # through the pauses ~100 %. Bounds with room for a busy machine (a spinning thread yields).
    assert parked_cpu < 0.08 * parked["wall_ns"], parked
    assert spinning_cpu > 3 * parked_cpu, (parked, spinning)


@pytest.mark.parametrize("value", ["-5", "fast", "10001"])
def test_a_refused_value_warns_and_keeps_the_default(value: str) -> None:
    result = run_probe(value)
    assert result["hits"] == result["expected_hits"]
    stderr = result["stderr"]
    assert "ALPHAFORGE_CACHE_SPIN_US" in stderr and "using the default, 200 us" in stderr
    assert stderr.count("alphaforge-cache:") == 1  # warned once
