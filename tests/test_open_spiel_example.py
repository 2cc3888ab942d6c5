"""RLlib's own self-play example, ``rllib/examples/multi_agent/self_play_with_open_spiel.py``
(old API stack, connect four, run through Tune), with the manual ``sync_weights()`` removed from
its callback: under the shim its league still matches the driver on every remote worker.

The callback is RLlib's source, loaded from the installed wheel with the one statement taken
out; the config is the example's old-stack config, made tiny. Its win-rate threshold is set
below any win rate, so a snapshot joins the league after every iteration.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import types
from pathlib import Path
from typing import Any

import pytest
from ray import tune

import helpers
import ray_compat
from rllib_addpolicy_fix import _compat

if ray_compat.RUNNING != ray_compat.NEWEST:
    pytest.skip("the example as shipped by the newest Ray", allow_module_level=True)
# The newest tested release pins open_spiel (noxfile.py): a failed import fails, never skips.
import pyspiel  # noqa: E402

pytestmark = [pytest.mark.timeout(400)]

EXAMPLE_CALLBACK = "ray.rllib.examples.multi_agent.utils.self_play_callback_old_api_stack"
ITERATIONS = 3


class _WithoutManualSync(ast.NodeTransformer):
    def visit_Expr(self, node: ast.Expr) -> ast.Expr | None:
        call = node.value
        if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "sync_weights":
            return None
        return node


def example_callback_without_manual_sync() -> type:
    spec = importlib.util.find_spec(EXAMPLE_CALLBACK)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    assert "sync_weights" in ast.unparse(tree)
    tree = ast.fix_missing_locations(_WithoutManualSync().visit(tree))
    assert "sync_weights" not in ast.unparse(tree)
    # A module of its own, unknown to the workers: its classes travel by value.
    module = types.ModuleType("self_play_callback_without_manual_sync")
    exec(compile(tree, spec.origin, "exec"), module.__dict__)
    return module.SelfPlayCallbackOldAPIStack  # type: ignore[no-any-return]


def checked_league(example: type, shim_off: bool) -> type:
    """The example's callback, with each result carrying the worst remote-vs-driver difference
    of the snapshots the example added in earlier iterations."""

    class CheckedLeague(example):  # type: ignore[misc,valid-type]
        def on_algorithm_init(self, *, algorithm: Any, **kwargs: Any) -> None:
            if shim_off:  # RLlib alone, in the trial
                import rllib_addpolicy_fix

                rllib_addpolicy_fix.uninstall()

        def on_train_result(self, *, algorithm: Any, result: dict[str, Any], **kwargs: Any) -> None:
            import rllib_addpolicy_fix

            driver = _compat.local_worker(_compat.training_group(algorithm))
            snapshots = [p for p in _compat.policy_ids(driver) if str(p).startswith("main_v")]
            state = algorithm.__dict__.setdefault("_checked", {"worst": 0.0, "checks": 0})
            if snapshots:
                report = rllib_addpolicy_fix.verify(algorithm, snapshots)
                state["worst"] = max(state["worst"], report.max_abs_diff())
                state["checks"] += len(report.checks)
            super().on_train_result(algorithm=algorithm, result=result, **kwargs)
            result["league_max_diff"] = state["worst"]
            result["league_checks"] = state["checks"]

    return CheckedLeague


def example_config(callback: type) -> Any:
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.env.wrappers.open_spiel import OpenSpielEnv
    from ray.rllib.examples._old_api_stack.policy.random_policy import RandomPolicy
    from ray.rllib.policy.policy import PolicySpec

    tune.register_env("open_spiel_env", lambda _: OpenSpielEnv(pyspiel.load_game("connect_four")))

    def policy_mapping_fn(agent_id: Any, episode: Any, worker: Any, **kwargs: Any) -> str:
        return "main" if episode.episode_id % 2 == agent_id else "random"

    config = (
        PPOConfig()
        .environment("open_spiel_env")
        .callbacks(functools.partial(callback, win_rate_threshold=-1.0))
        .multi_agent(
            policies={"main": PolicySpec(), "random": PolicySpec(policy_class=RandomPolicy)},
            policy_mapping_fn=policy_mapping_fn,
            policies_to_train=["main"],
        )
    )
    return _compat.configure_old_stack(config, num_workers=2, train_batch_size=200, hidden=(16,))


@pytest.mark.parametrize("shim", ["installed", "uninstalled"])
def test_rllib_self_play_example_without_its_manual_sync_stays_consistent(
    shim: str, ray_session: Any, tmp_path: Path
) -> None:
    from ray.rllib.algorithms.ppo import PPO

    callback = checked_league(example_callback_without_manual_sync(), shim == "uninstalled")
    results = tune.Tuner(
        PPO,
        param_space=example_config(callback),
        run_config=helpers.run_config(
            stop={"training_iteration": ITERATIONS}, storage_path=str(tmp_path), verbose=0
        ),
    ).fit()
    (result,) = list(results)
    assert result.error is None, result.error
    assert result.metrics["league_size"] == ITERATIONS + 2  # main, random, a snapshot each
    assert result.metrics["league_checks"] > 0
    if shim == "installed":
        assert result.metrics["league_max_diff"] == 0.0, result.metrics
    else:
        assert result.metrics["league_max_diff"] > 0.0, f"RLlib alone must diverge: {result}"
