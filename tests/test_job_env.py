"""Activation reaches trial processes: a script with only ``import rllib_addpolicy_fix`` gets
the fix into a Tune trial on a node whose Python cannot import the package (Ray ships it with
the job), the user's own runtime environment still applies, and an old Ray without worker
setup hooks says what to install instead."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
from test_activation import last_json, run

import ray_compat
from rllib_addpolicy_fix import _compat, _guard, _settings
from rllib_addpolicy_fix.activation import job_env as _job_env
from rllib_addpolicy_fix.activation import startup_hook as _startup_hook

SCRIPT = Path(__file__).parent / "scripts" / "trial_on_bare_node.py"
HOOKS = _compat.runs_setup_hooks()
needs_setup_hooks = pytest.mark.skipif(not HOOKS, reason="this Ray has no worker setup hooks")
#: The full Tune trial runs on the oldest tested release with setup hooks (2.5.1 has none)
#: and the newest; every release with hooks runs the cheaper tests of the runtime
#: environment it ships (below).
FIRST_WITH_HOOKS_AND_NEWEST = pytest.mark.skipif(
    ray_compat.RUNNING not in (ray_compat.TESTED_RAY[1], ray_compat.NEWEST),
    reason="runs on the oldest tested Ray with setup hooks and the newest",
)


@needs_setup_hooks
@FIRST_WITH_HOOKS_AND_NEWEST
@pytest.mark.timeout(400)
@pytest.mark.parametrize(
    "shim", ray_compat.shim_modes(ray_compat.RUNNING == ray_compat.NEWEST, "the newest tested Ray")
)
def test_tune_trial_on_a_node_without_the_package_gets_the_fix(shim: str) -> None:
    # This test environment has the wheel installed, whose start-up hook lets the driver
    # assume its job's processes activate the fix by themselves; the bare node proves that
    # wrong, as on a cluster whose other nodes lack the wheel: ship the fix, as an import-only
    # script does by default.
    env = {_settings.SHIP_ENV_VAR: "always"}
    if shim == "uninstalled":
        env["RLLIB_ADDPOLICY_FIX"] = "0"
    figures = last_json(run([sys.executable, str(SCRIPT), "trial"], timeout=380, **env))
    assert figures["league_checks"] > 0
    assert figures["trial_node"] == figures["bare_node"]
    # The user's runtime environment still applies: their env var and their setup hook.
    assert (figures["users_env_var"], figures["users_hook_ran"]) == ("kept", 1), figures
    if shim == "installed":
        assert figures["league_max_diff"] == 0.0, figures
        assert figures["trial_shim_active"] == 1
        assert "runtime_resources" in figures["trial_shim_file"]  # the copy Ray shipped
    else:
        assert figures["league_max_diff"] > 0.0, f"RLlib alone must diverge: {figures}"
        assert figures["trial_shim_active"] == 0


@pytest.mark.parametrize(
    ("setting", "start_up_hook_here", "ships"),
    [
        ("", True, False),  # the wheel installed: the job's processes activate by themselves
        ("", False, True),  # only `import rllib_addpolicy_fix` in the script: ship it
        ("auto", False, True),
        ("always", True, True),  # a cluster whose other nodes lack the wheel
        ("never", False, False),
    ],
)
def test_fix_ships_with_the_job_only_where_the_start_up_hook_is_not_in_effect(
    monkeypatch: pytest.MonkeyPatch, setting: str, start_up_hook_here: bool, ships: bool
) -> None:
    monkeypatch.setenv(_settings.SHIP_ENV_VAR, setting)
    monkeypatch.setattr(_job_env, "find_pth", lambda: ("x.pth", start_up_hook_here, ""))
    assert _job_env.ships() is ships


@pytest.mark.skipif(HOOKS, reason="this Ray runs worker setup hooks")
def test_ray_without_setup_hooks_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_job_env, "find_pth", lambda: (None, False, "not installed"))
    monkeypatch.setattr(_guard, "warned", set())
    with caplog.at_level(logging.WARNING, logger="rllib_addpolicy_fix"):
        assert _job_env.with_the_shim({"env_vars": {"A": "1"}}) is None  # passed on unchanged
        assert _job_env.with_the_shim(None) is None
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "pip install rllib-addpolicy-fix" in warning and "every node" in warning


def users_hook() -> None:
    os.environ["RLLIB_ADDPOLICY_FIX_TEST_USERS_HOOK"] = "ran"


@needs_setup_hooks
def test_users_runtime_env_is_kept_and_extended() -> None:
    users = {
        "env_vars": {"A": "1"},
        "pip": ["some-package"],
        "py_modules": ["/somewhere/users_module"],
        _compat.SETUP_HOOK_FIELD: users_hook,
    }
    merged = _job_env.with_the_shim(users)
    assert merged is not None and users[_compat.SETUP_HOOK_FIELD] is users_hook  # not mutated
    assert merged["env_vars"] == {"A": "1"} and merged["pip"] == ["some-package"]
    assert merged["py_modules"] == ["/somewhere/users_module", _job_env.PACKAGE_DIR]
    os.environ.pop("RLLIB_ADDPOLICY_FIX_TEST_USERS_HOOK", None)
    merged[_compat.SETUP_HOOK_FIELD]()  # arms (idempotent here) and runs the user's hook
    assert os.environ.pop("RLLIB_ADDPOLICY_FIX_TEST_USERS_HOOK") == "ran"


@needs_setup_hooks
def test_users_setup_hook_by_name_still_runs_and_its_errors_stay_its_own() -> None:
    hook = _startup_hook.worker_setup_hook(f"{__name__}.users_hook")
    os.environ.pop("RLLIB_ADDPOLICY_FIX_TEST_USERS_HOOK", None)
    hook()
    assert os.environ.pop("RLLIB_ADDPOLICY_FIX_TEST_USERS_HOOK") == "ran"

    def broken() -> None:
        raise RuntimeError("the user's hook failed")

    with pytest.raises(RuntimeError, match="the user's hook failed"):
        _startup_hook.worker_setup_hook(broken)()


@needs_setup_hooks
def test_submitted_job_with_its_own_py_modules_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``ray job submit`` set py_modules: ray.init may not extend it (Ray refuses the merge), so
    the runtime environment stays the user's and one warning says what to install."""
    monkeypatch.setenv(
        "RAY_JOB_CONFIG_JSON_ENV_VAR", '{"runtime_env": {"py_modules": ["/job/module"]}}'
    )
    monkeypatch.setattr(_guard, "warned", set())
    with caplog.at_level(logging.WARNING, logger="rllib_addpolicy_fix"):
        assert _job_env.with_the_shim({"env_vars": {"A": "1"}}) is None
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "py_modules" in warning and "pip install rllib-addpolicy-fix" in warning
