"""A league under random worker kills: how many batches were sampled with weights other than the
driver's, by an independent digest on the workers, and what the fix's audit says.

PPO, W remote workers with restarts on; "main" trains, player_1 faces the config's slot
"frozen" (refreshed on the driver every 5 iterations) and snapshots (one added every 4, by the
documented copy). A thread kills a random remote worker every ``--kill-every`` seconds; Ray
restarts it. On each worker, at the end of each sample, a callback digests the weights of every
policy in it and appends them to a file (files outlive killed processes). After each
``train()`` the new lines are compared with the driver's weights of that iteration.

    python benchmarks/random_kills.py [--iterations 40] [--kill-every 3] [--check-off]

``--check-off`` turns the check at the point of use off (the rest of the fix on), and
``--shim-off`` runs RLlib alone, for the comparison.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np
import ray
from ray.rllib.algorithms.callbacks import DefaultCallbacks
from ray.rllib.policy.policy import PolicySpec

import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import versions as _versions
from rllib_addpolicy_fix.tools import game
from rllib_addpolicy_fix.tools.demo import copy_weights

PROBE_DIR = tempfile.mkdtemp(prefix="rllib_addpolicy_fix_kills_")


def digest(weights: dict[str, Any]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for key in sorted(weights):
        array = np.ascontiguousarray(np.asarray(weights[key]))
        h.update(f"{key}{array.dtype.str}{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


class FileProbe(DefaultCallbacks):  # type: ignore[misc]
    def on_sample_end(self, *args: Any, **kwargs: Any) -> None:
        worker, samples = kwargs.get("worker"), kwargs.get("samples")
        if worker is None or samples is None or getattr(worker, "worker_index", 0) == 0:
            return
        seen = {pid: digest(worker.policy_map[pid].get_weights()) for pid in samples.policy_batches}
        with open(os.path.join(PROBE_DIR, f"{os.getpid()}.jsonl"), "a") as out:
            out.write(json.dumps(seen) + "\n")


def league_mapping(agent_id: str, *args: Any, worker: Any = None, **kwargs: Any) -> str:
    if agent_id == game.PLAYERS[0]:
        return "main"
    others = sorted(pid for pid in worker.policy_map.keys() if pid != "main")
    return random.choice(others) if others else "main"


def build(workers: int) -> Any:
    from ray.rllib.algorithms.ppo import PPOConfig

    spec = PolicySpec(None, game.OBSERVATION_SPACE, game.ACTION_SPACE, {})
    config = (
        PPOConfig()
        .environment(game.RockPaperScissors)
        .multi_agent(
            policies={"main": spec, "frozen": spec},
            policy_mapping_fn=league_mapping,
            policies_to_train=["main"],
        )
        .callbacks(FileProbe)
        .debugging(seed=0, log_level="ERROR")
    )
    config = _compat.configure_old_stack(config, num_workers=workers)
    parameters = _compat.signature(type(config).fault_tolerance).parameters
    for restart, delay in (
        ("restart_failed_env_runners", "delay_between_env_runner_restarts_s"),
        ("recreate_failed_env_runners", "delay_between_env_runner_restarts_s"),
        ("recreate_failed_workers", "delay_between_worker_restarts_s"),
    ):
        if restart in parameters:
            config = config.fault_tolerance(**{restart: True, delay: 0})
            break
    return config.build()


def read_new_lines(offsets: dict[str, int]) -> list[dict[str, str]]:
    lines = []
    for name in sorted(os.listdir(PROBE_DIR)):
        path = os.path.join(PROBE_DIR, name)
        with open(path) as probe:
            probe.seek(offsets.get(name, 0))
            text = probe.read()
        complete = text[: text.rfind("\n") + 1]
        offsets[name] = offsets.get(name, 0) + len(complete)
        lines += [json.loads(line) for line in complete.splitlines() if line]
    return lines


def killer(algo: Any, every_s: float, stop: threading.Event, kills: list[int]) -> None:
    while not stop.wait(every_s):
        manager = _compat.worker_manager(_compat.training_group(algo))
        actors = dict(manager.actors()) if manager is not None else {}
        if actors:
            worker_id = random.choice(sorted(actors))
            ray.kill(actors[worker_id], no_restart=False)
            kills.append(worker_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--check-off", action="store_true")
    parser.add_argument("--shim-off", action="store_true")
    args = parser.parse_args()
    if args.shim_off:
        fix.uninstall()
    _versions.CATCH_UP_AT_USE = not args.check_off
    ray.init(num_cpus=args.workers + 2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(game)
    algo = build(args.workers)
    offsets: dict[str, int] = {}
    stop, kills = threading.Event(), []
    algo.train()
    read_new_lines(offsets)
    thread = threading.Thread(target=killer, args=(algo, args.kill_every, stop, kills))
    thread.start()
    sampled = stale = 0
    audit = {"sampled_batches": 0, "stale_batches": 0, "caught_up": 0}
    started = time.perf_counter()
    snapshots = 0
    try:
        for iteration in range(1, args.iterations + 1):
            if iteration % 5 == 1:
                main_weights = algo.get_policy("main").get_weights()
                algo.set_weights(
                    {"frozen": {k: v + 0.01 * iteration for k, v in main_weights.items()}}
                )
            if iteration % 4 == 1:
                snapshots += 1
                copy_weights(algo, f"main_v{snapshots}")
            expected = {
                pid: digest(algo.get_policy(pid).get_weights())
                for pid in _compat.policy_ids(_compat.local_worker(_compat.training_group(algo)))
                if pid != "main"
            }
            result = algo.train()
            for batch in read_new_lines(offsets):
                for pid, held in batch.items():
                    if pid in expected:
                        sampled += 1
                        stale += held != expected[pid]
            figures = result.get(fix.RESULT_KEY, {})
            for name in audit:
                audit[name] += int(figures.get(f"training_{name}", 0))
    finally:
        stop.set()
        thread.join()
        algo.stop()
        ray.shutdown()
    mode = "RLlib alone" if args.shim_off else "check at use off" if args.check_off else "fix"
    print(
        f"{mode}: {args.iterations} iterations, {len(kills)} kills in "
        f"{time.perf_counter() - started:.0f} s (Ray {ray.__version__}, W={args.workers})"
    )
    print(f"  independent digest: {stale} of {sampled} slot/snapshot batches stale")
    if not args.shim_off:
        print(
            f"  audit in the results: {audit['stale_batches']} of {audit['sampled_batches']} "
            f"stale, {audit['caught_up']} catch-ups"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
