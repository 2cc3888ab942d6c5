"""A Tune trial on a node whose Python cannot import rllib_addpolicy_fix (``bare_node``), started
by a script whose only change is ``import rllib_addpolicy_fix``. The head node has no CPUs, so
the trial and its two rollout workers run on the bare node.

    python trial_on_bare_node.py trial       # RLLIB_ADDPOLICY_FIX=0 in the environment: control
    python trial_on_bare_node.py init-only   # only ray.init, for the warning of an old Ray

The job's runtime environment is the user's own (an env var and a setup hook where Ray has
them), to show it still applies. Prints one JSON line with the trial's last result figures.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import tempfile
from typing import Any

import numpy as np
import ray
import ray.cloudpickle
from ray import tune
from ray.cluster_utils import Cluster
from ray.rllib.algorithms.callbacks import DefaultCallbacks
from ray.rllib.algorithms.ppo import PPO

import rllib_addpolicy_fix  # noqa: F401 - the line the user adds
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.tools import game

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import helpers  # noqa: E402

BARE_NODE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bare_node")


def users_setup_hook() -> None:
    os.environ["USERS_HOOK_RAN"] = "1"


def remote_weights(algorithm: Any, policy_ids: list[str]) -> list[dict[str, Any]]:
    def fetch(worker: Any) -> dict[str, Any]:
        return {pid: worker.get_policy(pid).get_weights() for pid in policy_ids}

    group = getattr(algorithm, "env_runner_group", None) or algorithm.workers
    if hasattr(group, "foreach_env_runner"):
        return list(group.foreach_env_runner(fetch, local_env_runner=False))
    if "local_env_runner" in inspect.signature(group.foreach_worker).parameters:  # 2.40
        return list(group.foreach_worker(fetch, local_env_runner=False))
    return list(group.foreach_worker(fetch, local_worker=False))


class BareNodeLeague(DefaultCallbacks):  # type: ignore[misc]
    """After each iteration the documented snapshot copy; each result carries the worst
    remote-vs-driver difference of the snapshots so far. Uses nothing of rllib_addpolicy_fix."""

    def on_train_result(self, *, algorithm: Any, result: dict[str, Any], **kwargs: Any) -> None:
        state = algorithm.__dict__.setdefault("_bare_league", {"turn": 0, "worst": 0.0, "n": 0})
        snapshots = [f"main_v{turn}" for turn in range(1, state["turn"] + 1)]
        if snapshots:
            driver = {pid: algorithm.get_policy(pid).get_weights() for pid in snapshots}
            for remote in remote_weights(algorithm, snapshots):
                for pid, weights in remote.items():
                    for name, value in weights.items():
                        diff = float(np.max(np.abs(value - driver[pid][name])))
                        state["worst"] = max(state["worst"], diff)
                        state["n"] += 1
        state["turn"] += 1
        main = algorithm.get_policy("main")
        snapshot = f"main_v{state['turn']}"
        algorithm.add_policy(
            snapshot,
            type(main),
            observation_space=main.observation_space,
            action_space=main.action_space,
            config=main.config,
        )
        algorithm.get_policy(snapshot).set_weights(main.get_weights())
        shim = sys.modules.get("rllib_addpolicy_fix")
        result.update(
            league_max_diff=state["worst"],
            league_checks=state["n"],
            trial_node=ray.get_runtime_context().get_node_id(),
            trial_shim_file=getattr(shim, "__file__", None) or "",
            trial_shim_active=int(bool(shim and shim.is_installed())),
            users_hook_ran=int(os.environ.get("USERS_HOOK_RAN") == "1"),
            users_env_var=os.environ.get("USERS_ENV_VAR", ""),
        )


def main(mode: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=3, env_vars={"PYTHONPATH": BARE_NODE})
    runtime_env: dict[str, Any] = {"env_vars": {"USERS_ENV_VAR": "kept"}}
    if _compat.runs_setup_hooks():
        runtime_env[_compat.SETUP_HOOK_FIELD] = users_setup_hook
    ray.init(
        address=cluster.address,
        log_to_driver=False,
        configure_logging=False,
        runtime_env=runtime_env,
    )
    try:
        if mode == "init-only":
            print(json.dumps({}))
            return
        for module in (helpers, game):  # the user's own code travels by value
            ray.cloudpickle.register_pickle_by_value(module)
        storage = tempfile.mkdtemp(prefix="rllib_addpolicy_fix_bare_node_")  # not ~/ray_results
        results = tune.Tuner(
            PPO,
            param_space=helpers.ppo_config(callbacks=BareNodeLeague),
            run_config=helpers.run_config(
                stop={"training_iteration": 3}, verbose=0, storage_path=storage
            ),
        ).fit()
        (result,) = list(results)
        if result.error is not None:
            raise result.error
        figures = {
            key: result.metrics[key]
            for key in (
                "league_max_diff",
                "league_checks",
                "trial_node",
                "trial_shim_file",
                "trial_shim_active",
                "users_hook_ran",
                "users_env_var",
            )
        }
        # The only node with CPUs (with two nodes on one IP, the driver may attach to either).
        (figures["bare_node"],) = [
            node["NodeID"] for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU")
        ]
        print(json.dumps(figures))
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
