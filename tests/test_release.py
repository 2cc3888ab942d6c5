"""What a user of a well-kept package expects beyond the fix itself: the shim never runs
half-installed, the environment variable and the command line say what they accept, the
README's release table is the one CI tests, and the fix says once that it is in effect."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import helpers
import ray_compat
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat, _guard, _settings
from rllib_addpolicy_fix._compat import releases as _releases
from rllib_addpolicy_fix.patching import install as _install
from rllib_addpolicy_fix.patching import table as _patch_table
from rllib_addpolicy_fix.tools import doctor as _doctor

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[1]


def run_python(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != _settings.ENV_VAR} | env
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=110,
        cwd=str(Path.home()),
    )


def test_a_required_rllib_attribute_that_is_missing_leaves_rllib_entirely_unpatched(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ray.rllib.algorithms.algorithm import Algorithm

    missing = _patch_table.Patch(
        "ray.rllib.algorithms.algorithm",
        "Algorithm",
        "moved_by_a_future_ray",
        _patch_table.PATCHES[0].wrapper,
    )
    fix.uninstall()
    original = {name: vars(Algorithm)[name] for name in ("add_policy", "step")}  # RLlib's own
    monkeypatch.setattr(_guard, "warned", set())
    monkeypatch.setattr(_patch_table, "PATCHES", (*_patch_table.PATCHES, missing))
    caplog.set_level(logging.WARNING)
    try:
        assert fix.install() is False
        assert not fix.is_installed() and _install.wrapped_targets() == []
        assert {name: vars(Algorithm)[name] for name in original} == original
        assert _install.missing_targets() == [missing.name]
        warnings = [
            r.getMessage() for r in caplog.records if "moved_by_a_future_ray" in r.getMessage()
        ]
        assert len(warnings) == 1 and "patches nothing" in warnings[0], warnings
        diagnosis = _doctor.diagnose(probe=False)
        assert diagnosis.missing_here == [missing.name] and diagnosis.exit_code == 1
        assert diagnosis.verdict.startswith("OFF")
    finally:
        monkeypatch.undo()
        assert fix.install()
    assert _install.missing_targets() == [] and vars(Algorithm)["step"] is not original["step"]


@ray_compat.newest_only
def test_an_unknown_environment_value_warns_once_and_lists_the_accepted_ones() -> None:
    done = run_python(
        "-c",
        "import rllib_addpolicy_fix as f, ray.rllib; f.install(); print(f.is_installed())",
        RLLIB_ADDPOLICY_FIX="maybe",
    )
    assert done.stdout.split() == ["True"], done.stderr
    assert done.stderr.count("is not a known value") == 1, done.stderr
    assert all(value in done.stderr for value in ("'0'", "'off'", "'disable'")), done.stderr


@ray_compat.newest_only
def test_version_flag_prints_the_package_version() -> None:
    done = run_python("-m", "rllib_addpolicy_fix", "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"rllib-addpolicy-fix {fix.__version__}"


@ray_compat.newest_only
def test_readme_release_table_is_the_one_ci_tests() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\d+\.\d+\.\d+) \| ([^|]+) \| yes \|$", readme, re.MULTILINE))
    expected = {
        ray: ", ".join(pin.replace("==", " ") for pin in pins)
        for ray, pins in _releases.TESTED_RAY.items()
    }
    assert {ray: pins.strip() for ray, pins in rows.items()} == expected
    assert f"`{_releases.SUPPORTED_RAY}`" in readme
    assert str(_compat.SUPPORTED_RAY) == str(_compat.versions.SUPPORTED_RAY)


def test_the_fix_says_once_at_info_that_it_is_in_effect_for_an_algorithm(
    build: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert fix.install()
    caplog.set_level(logging.INFO, logger="rllib_addpolicy_fix")
    algo = build(helpers.ppo_config(num_workers=0))
    algo.train()
    algo.train()
    lines = [
        r
        for r in caplog.records
        if r.name.startswith("rllib_addpolicy_fix") and r.levelno == logging.INFO
    ]
    assert [r.getMessage() for r in lines] == [
        f"rllib_addpolicy_fix: in effect for PPO (Ray {_compat.installed_ray_version()}): keeping "
        "0 remote rollout worker(s) and 0 evaluation worker(s) in sync with the driver's "
        "policies."
    ]


def test_every_tested_release_has_floors_and_its_skips_listed_for_ci() -> None:
    """``.ci/lanes.py`` fails a session that collects or passes fewer tests than
    ``expected_runs.py`` says, or skips one it does not list: every tested release, and no
    other, must be there."""
    import expected_runs

    assert set(expected_runs.FLOORS) == set(_releases.TESTED_RAY)
    assert set(expected_runs.SKIPS) <= set(_releases.TESTED_RAY)
    for release, floors in expected_runs.FLOORS.items():
        assert 0 < floors["passed"] <= floors["collected"], release
        assert floors["collected"] - floors["passed"] >= len(expected_runs.SKIPS.get(release, {}))
