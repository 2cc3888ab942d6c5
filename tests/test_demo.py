"""The demo a new user runs: divergence with the shim off, none with it on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import ray_compat

pytestmark = ray_compat.newest_only


@pytest.mark.timeout(300)
def test_demo_shows_the_divergence_without_the_shim_and_none_with_it() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rllib_addpolicy_fix",
            "demo",
            "--iterations",
            "5",
            "--snapshot-every",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=str(Path.home()),
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    internal = [line for line in (out + done.stderr).splitlines() if re.search(r"\.cc:\d+", line)]
    assert internal == [], internal  # no Ray-internal (C++) log lines in what a user sees
    without = next(line for line in out.splitlines() if line.strip().startswith("shim off:"))
    with_shim = next(line for line in out.splitlines() if line.strip().startswith("shim on:"))
    assert without.split()[2] == "4" and "of 4" in without, out  # 2 snapshots x 2 workers
    assert with_shim.split()[2] == "0" and "of 4" in with_shim, out
    assert "FIXED" in out and "[BAD] snapshot main_v1" in out and "[OK ] snapshot main_v1" in out
