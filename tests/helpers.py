"""Test helpers. Registered with Ray's cloudpickle by value (see conftest), so the functions and
the callback class below run on remote workers without the tests being importable there."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from typing import Any

import numpy as np
from ray.rllib.algorithms.callbacks import DefaultCallbacks
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.ppo.ppo_torch_policy import PPOTorchPolicy
from ray.rllib.policy.policy import Policy, PolicySpec

from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import transport as _transport
from rllib_addpolicy_fix.tools.demo import copy_weights as copy_weights  # the seed's snapshot code
from rllib_addpolicy_fix.tools.game import (
    ACTION_SPACE,
    OBSERVATION_SPACE,
    PLAYERS,
    RockPaperScissors,
)

PROBE_OBSERVATION = np.array([0.0, 1.0, 0.0, 0.0], np.float32)


def map_everyone_to_main(agent_id: Any, *args: Any, **kwargs: Any) -> str:
    return "main"


def map_each_player_to_its_own_policy(agent_id: Any, *args: Any, **kwargs: Any) -> str:
    return "p0" if agent_id == PLAYERS[0] else "p1"


def digest(weights: Any) -> str:
    """Exact fingerprint of a weights dict."""
    h = hashlib.blake2b(digest_size=16)
    for key in sorted(weights):
        array = np.ascontiguousarray(np.asarray(weights[key]))
        h.update(f"{key}{array.dtype.str}{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


class SampleProbe(DefaultCallbacks):  # type: ignore[misc]
    """Records, on each worker, the weights every policy had when the worker last sampled."""

    def on_sample_end(self, *args: Any, **kwargs: Any) -> None:
        worker = kwargs.get("worker") or kwargs.get("env_runner")
        if worker is None:
            return
        seen = {
            pid: digest(worker.policy_map[pid].get_weights())
            for pid in list(worker.policy_map.keys())
        }
        worker.__dict__.setdefault("_probe_samples", []).append(seen)


class SelfPlaySnapshots(SampleProbe):
    """RLlib's old-stack self-play callback, minus its ``sync_weights()`` line."""

    def on_train_result(self, *, algorithm: Any, result: dict[str, Any], **kwargs: Any) -> None:
        if algorithm.get_policy("main_v1") is not None:
            return
        main_policy = algorithm.get_policy("main")
        new_policy = algorithm.add_policy(
            policy_id="main_v1",
            policy_cls=type(main_policy),
            policy_mapping_fn=map_everyone_to_main,
        )
        new_policy.set_state(main_policy.get_state())


class AddsInOnAlgorithmInit(SampleProbe):
    """Adds a snapshot while the algorithm is being set up, by the documented copy."""

    def on_algorithm_init(self, *, algorithm: Any, **kwargs: Any) -> None:
        copy_weights(algorithm, "from_callback")


def perturbed(weights: dict[str, Any], by: float) -> dict[str, Any]:
    return {
        key: np.asarray(value) + np.asarray(by, np.asarray(value).dtype)
        for key, value in weights.items()
    }


def add_to_weights(worker: Any, policy_id: str, by: float) -> None:
    """Change a policy's weights on one worker only (a copy that diverges where it lives)."""
    policy = worker.policy_map[policy_id]
    policy.set_weights(perturbed(policy.get_weights(), by))


def policy_ids_of(worker: Any) -> list[str]:
    return list(worker.policy_map.keys())


def probe_samples(worker: Any) -> list[dict[str, str]]:
    return list(worker.__dict__.get("_probe_samples", []))


def action_logits(worker: Any, policy_id: str) -> Any:
    policy = worker.policy_map[policy_id]
    _, _, fetches = policy.compute_single_action(PROBE_OBSERVATION, explore=False)
    return np.asarray(fetches["action_dist_inputs"])


def ppo_config(
    *,
    num_workers: int = 1,
    evaluation_workers: int = 0,
    callbacks: type | None = None,
    policies: tuple[str, ...] = ("main",),
    custom_resources_per_worker: dict[str, float] | None = None,
    **multi_agent: Any,
) -> Any:
    """PPO on the legacy stack; ``multi_agent`` adds settings such as ``policy_map_capacity``.

    One remote worker unless a test's point needs two (one state sent to several workers, one
    worker stuck or crashed beside a healthy one): each is a process that imports torch and
    RLlib, about 6 s of CPU on this 2-core machine."""
    config = (
        PPOConfig()
        .environment(RockPaperScissors)
        .multi_agent(
            policies={
                pid: PolicySpec(None, OBSERVATION_SPACE, ACTION_SPACE, {}) for pid in policies
            },
            policy_mapping_fn=map_everyone_to_main,
            policies_to_train=["main"],
            **multi_agent,
        )
        .debugging(seed=0, log_level="ERROR")
    )
    if callbacks is not None:
        config = config.callbacks(callbacks)
    return _compat.configure_old_stack(
        config,
        num_workers=num_workers,
        evaluation_workers=evaluation_workers,
        custom_resources_per_worker=custom_resources_per_worker,
    )


def remote_facts(worker: Any) -> dict[str, Any]:
    """Where a remote worker runs, and which of the shim's modules it has imported."""
    import sys

    import ray

    shim = sys.modules.get("rllib_addpolicy_fix")
    return {
        "node": ray.get_runtime_context().get_node_id(),
        "shim_modules": sorted(m for m in sys.modules if m.startswith("rllib_addpolicy_fix")),
        "shim_active": bool(shim and shim.is_installed()),
    }


class NumpyPolicy(Policy):  # type: ignore[misc]
    """A custom non-torch policy: a linear scorer with numpy weights (the generic path)."""

    def __init__(self, observation_space: Any, action_space: Any, config: dict[str, Any]) -> None:
        super().__init__(observation_space, action_space, config)
        self.w = (
            np.random.default_rng()
            .normal(size=(observation_space.shape[0], action_space.n))
            .astype(np.float32)
        )

    def compute_actions(self, obs_batch: Any, *args: Any, **kwargs: Any) -> Any:
        scores = np.asarray(obs_batch, np.float32) @ self.w
        return scores.argmax(axis=1), [], {}

    def learn_on_batch(self, samples: Any) -> dict[str, Any]:
        return {}

    def get_weights(self) -> dict[str, Any]:
        return {"w": self.w.copy()}

    def set_weights(self, weights: dict[str, Any]) -> None:
        self.w = np.array(weights["w"], np.float32)


def train_only_main(policy_id: str, batch: Any = None) -> bool:
    """A callable ``policies_to_train``, as ``Algorithm.add_policy`` documents."""
    return policy_id == "main"


def trains(worker: Any, policy_id: str) -> bool:
    return bool(worker.is_policy_to_train(policy_id, None))


def algorithm_config(name: str, *, num_workers: int = 1, callbacks: type | None = None) -> Any:
    """DQN (off-policy) or APPO (asynchronous sampling) on the legacy stack, tiny sizes."""
    from ray.rllib.algorithms.appo import APPOConfig
    from ray.rllib.algorithms.dqn import DQNConfig

    config = {"DQN": DQNConfig, "APPO": APPOConfig}[name]()
    config = (
        config.environment(RockPaperScissors)
        .multi_agent(
            policies={"main": PolicySpec(None, OBSERVATION_SPACE, ACTION_SPACE, {})},
            policy_mapping_fn=map_everyone_to_main,
            policies_to_train=["main"],
        )
        .debugging(seed=0, log_level="ERROR")
    )
    if callbacks is not None:
        config = config.callbacks(callbacks)
    config = _compat.configure_old_stack(config, num_workers=num_workers)
    if name == "DQN":
        config = config.training(
            train_batch_size=32,
            num_steps_sampled_before_learning_starts=40,
            replay_buffer_config={
                "type": "ray.rllib.utils.replay_buffers.MultiAgentReplayBuffer",
                "capacity": 1000,
            },
        )
    return config


def checks_of(report: Any, group: str) -> Any:
    """The part of a ``verify`` report about one worker set ("training" or "evaluation")."""
    import rllib_addpolicy_fix

    checks = tuple(check for check in report.checks if check.group == group)
    return rllib_addpolicy_fix.ConsistencyReport(checks, report.notes)


# Driver-side checks of what the remote workers sampled with (see SampleProbe).


def remote_results(algo: Any, func: Any, group: Any = None) -> list[Any]:
    """``func`` on every remote worker of the training set (or ``group``), by the fix's own
    call (no pre-use work rides along); every worker must answer: a check that looked only at
    those that did could pass on none."""
    group = group if group is not None else _compat.training_group(algo)
    replies = _transport.foreach_remote(group, func)
    assert not replies.unreached, f"remote workers {replies.unreached} did not answer"
    assert len(replies) == _compat.num_remote_workers(group), "not every remote worker answered"
    return [result for _, result in replies]


def process_samples(worker: Any) -> tuple[int, list[dict[str, str]]]:
    """This worker's process id and what :class:`SampleProbe` recorded in it."""
    return os.getpid(), probe_samples(worker)


def sample_count(algo: Any, group: Any = None) -> dict[int, tuple[int, int]]:
    """``{worker id: (process id, samples recorded so far)}`` of every remote worker of the
    training set (or ``group``); every worker must answer."""
    group = group if group is not None else _compat.training_group(algo)
    replies = _transport.foreach_remote(group, process_samples)
    assert not replies.unreached, f"remote workers {replies.unreached} did not answer"
    return {worker_id: (pid, len(samples)) for worker_id, (pid, samples) in replies}


def samples_since(
    algo: Any, counts: dict[int, tuple[int, int]], *, required: bool = True, group: Any = None
) -> list[dict[str, str]]:
    """What each remote worker's policies held whenever it sampled since ``counts`` (of the
    training set, or ``group``), matched by worker id: a worker whose process is new since
    (Ray restarted it) counts every sample of its new process. Every worker must answer."""
    group = group if group is not None else _compat.training_group(algo)
    replies = _transport.foreach_remote(group, process_samples)
    assert not replies.unreached, f"remote workers {replies.unreached} did not answer"
    seen = []
    for worker_id, (pid, samples) in replies:
        before_pid, before = counts.get(worker_id, (pid, 0))
        seen += samples[before if before_pid == pid else 0 :]
    assert seen or not required, "the workers did not sample"
    return seen


def expect_sampled_with(
    shim: Any, seen: list[dict[str, str]], policy_id: str, expected: str, *, every: bool = True
) -> None:
    """With the shim, every sample held ``expected`` for ``policy_id``; RLlib alone sampled
    stale weights in every sample (``every``), or in at least one (where RLlib itself gets some
    workers right, such as those it restored from the driver)."""
    matches = [sample[policy_id] == expected for sample in seen if policy_id in sample]
    assert len(matches) == len(seen), f"{policy_id}: missing from some samples"
    if shim.active:
        assert all(matches), f"{policy_id}: {matches.count(False)} of {len(matches)} samples stale"
    elif every:
        assert not any(matches), f"{policy_id}: expected RLlib alone to sample stale weights"
    else:
        assert not all(matches), f"{policy_id}: expected RLlib alone to sample stale weights"


# Hosts: the Algorithm in a Tune trial or a Ray actor. Everything below runs in that process.


class LeagueProbe(SampleProbe):
    """A league played where the Algorithm lives: after iteration 1 a snapshot by the documented
    copy (``add_policy`` + driver-side ``set_weights``), after 2 a refresh through
    ``algorithm.set_weights``, after each later one another snapshot. Each result reports the
    largest difference ``verify`` has seen so far between a remote copy of an earlier snapshot
    and the driver's (``league_max_diff``), and how many copies it compared; and, from what the
    remote training workers recorded whenever they sampled (``SampleProbe``), how many snapshot
    copies they sampled with since the snapshot was added or refreshed
    (``league_sampled``), and how many of those differed from the driver's
    (``league_stale_samples``): what no read through the worker set can flatter."""

    turn_shim_off = False

    def on_algorithm_init(self, *, algorithm: Any, **kwargs: Any) -> None:
        if self.turn_shim_off:  # RLlib alone, in the hosting process
            import rllib_addpolicy_fix

            rllib_addpolicy_fix.uninstall()

    def on_train_result(self, *, algorithm: Any, result: dict[str, Any], **kwargs: Any) -> None:
        import rllib_addpolicy_fix

        state = self.league_state(algorithm)
        driver = _compat.local_worker(_compat.training_group(algorithm))
        snapshots = [pid for pid in _compat.policy_ids(driver) if str(pid).startswith("main_v")]
        if snapshots:
            report = rllib_addpolicy_fix.verify(algorithm, snapshots)
            state["worst"] = max(state["worst"], report.max_abs_diff())
            state["checks"] += sum(check.policy_id != "*" for check in report.checks)
            state["uncompared"] += sum(check.policy_id == "*" for check in report.checks)
        state["turn"] += 1
        changed = "main_v1" if state["turn"] == 2 else f"main_v{state['turn']}"
        if state["turn"] == 2:
            algorithm.set_weights({changed: algorithm.get_policy("main").get_weights()})
        else:
            copy_weights(algorithm, changed)
        self.expect_sampled(algorithm, changed, result)
        result["league_max_diff"] = float(state["worst"])
        result["league_checks"] = state["checks"]
        result["league_uncompared"] = state["uncompared"]

    @staticmethod
    def league_state(algorithm: Any, held_before: dict[str, str] | None = None) -> dict[str, Any]:
        """This Algorithm's league bookkeeping, after counting the snapshot copies its remote
        training workers sampled with since the last call (and how many were stale).
        ``held_before``: digests of snapshots the driver already held (restored from a
        checkpoint, whose bookkeeping did not survive), expected from now on too."""
        state: dict[str, Any] = algorithm.__dict__.setdefault(
            "_league",
            {"turn": 0, "worst": 0.0, "checks": 0, "seen": [], "expected": {}},
        )
        state.setdefault("sampled", 0)
        state.setdefault("stale", 0)
        state.setdefault("uncompared", 0)
        for pid, held in (held_before or {}).items():
            state["expected"].setdefault(pid, held)
        per_worker = remote_results(algorithm, probe_samples)
        for before, samples in zip(state["seen"] or [0] * len(per_worker), per_worker):
            for sample in samples[before:]:
                for pid, expected in state["expected"].items():
                    state["sampled"] += pid in sample
                    state["stale"] += pid in sample and sample[pid] != expected
        state["seen"] = [len(samples) for samples in per_worker]
        return state

    @staticmethod
    def expect_sampled(algorithm: Any, policy_id: str, result: dict[str, Any]) -> None:
        """From the next sample on, remote copies of ``policy_id`` must hold the driver's
        weights as they are now; ``result`` gets the sampling-time figures so far."""
        state = algorithm.__dict__["_league"]
        state["expected"][policy_id] = digest(algorithm.get_policy(policy_id).get_weights())
        result["league_sampled"] = state["sampled"]
        result["league_stale_samples"] = state["stale"]


class LeagueProbeWithoutShim(LeagueProbe):
    turn_shim_off = True


#: Marker files, one set per test session (CI runs two sessions side by side on one machine).
#: The values are the test process's: this module goes to other processes pickled by value.
_MARKER_PREFIX = os.path.join(tempfile.gettempdir(), f"rllib_addpolicy_fix_tests_{os.getpid()}")
FAILED_ONCE_MARKER = f"{_MARKER_PREFIX}_failed_once"


class LeagueThatFailsOnce(LeagueProbe):
    """A league kept across a restore from checkpoint: the next snapshot is numbered from the
    snapshots the Algorithm holds (restored ones included), and the iteration that adds the
    second one fails once (a marker file), after it was added and before its checkpoint, so
    Tune restores the trial from the checkpoint that holds the first. Each result reports the
    snapshots' worst remote-vs-driver difference at that iteration."""

    def on_train_result(self, *, algorithm: Any, result: dict[str, Any], **kwargs: Any) -> None:
        import rllib_addpolicy_fix

        driver = _compat.local_worker(_compat.training_group(algorithm))
        snapshots = [pid for pid in _compat.policy_ids(driver) if str(pid).startswith("main_v")]
        # The snapshots restored with the Algorithm are sampling-checked too (frozen: the
        # driver's copy now is what every sample since the restore must have held).
        held = {pid: digest(algorithm.get_policy(pid).get_weights()) for pid in snapshots}
        state = self.league_state(algorithm, held_before=held)
        report = rllib_addpolicy_fix.verify(algorithm, snapshots) if snapshots else None
        copy_weights(algorithm, f"main_v{len(snapshots) + 1}")
        self.expect_sampled(algorithm, f"main_v{len(snapshots) + 1}", result)
        result["league_max_diff"] = report.max_abs_diff() if report else 0.0
        checks = report.checks if report else ()
        state["checks"] += sum(check.policy_id != "*" for check in checks)
        state["uncompared"] += sum(check.policy_id == "*" for check in checks)
        result["league_checks"] = state["checks"]
        result["league_uncompared"] = state["uncompared"]
        result["league_snapshots"] = len(snapshots) + 1
        if len(snapshots) + 1 == 2 and not os.path.exists(FAILED_ONCE_MARKER):
            with open(FAILED_ONCE_MARKER, "w"):
                pass
            raise RuntimeError("the test's trial fails once, to be restored from its checkpoint")


class LeagueThatFailsOnceWithoutShim(LeagueThatFailsOnce):
    turn_shim_off = True


def league_ppo_subclass() -> type:
    """A PPO subclass as a user defines one in a script (pickled by value, like ``__main__``)."""
    from ray.rllib.algorithms.ppo import PPO

    class LeaguePPO(PPO):  # type: ignore[misc]
        def training_step(self) -> Any:
            return super().training_step()

    return LeaguePPO


class LeagueRunner:
    """A user's own actor that builds and trains an Algorithm (made remote by the test)."""

    def __init__(self, config: Any) -> None:
        self.algo = config.build()

    def train(self) -> dict[str, Any]:
        result = self.algo.train()
        return {key: value for key, value in result.items() if str(key).startswith("league_")}

    def stop(self) -> None:
        self.algo.stop()


def function_trainable(config: dict[str, Any]) -> dict[str, Any]:
    """A Tune trainable that is a function, not an Algorithm."""
    return {"score": config["x"] * 2}


def run_config(**kwargs: Any) -> Any:
    """Tune's ``RunConfig``: ``ray.air`` (2.5), ``ray.train`` (2.7), ``ray.tune`` (2.40+)."""
    return tune_class("RunConfig")(**kwargs)


def tune_class(name: str) -> Any:
    """``RunConfig``, ``CheckpointConfig``, ``FailureConfig`` from where this Ray keeps them."""
    import importlib

    for module in ("ray.tune", "ray.train", "ray.air"):
        found = getattr(importlib.import_module(module), name, None)
        if found is not None:
            return found
    raise ImportError(f"no {name} in this Ray")


# Faults: a remote worker whose ``set_weights`` does not return while a marker file names it.

HOLD_MARKER = f"{_MARKER_PREFIX}_hold_set_weights"


def process_id(worker: Any) -> int:
    return os.getpid()


def hold_set_weights_in(pid: int) -> None:
    with open(HOLD_MARKER, "w") as marker:
        marker.write(str(pid))


def release_set_weights() -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(HOLD_MARKER)


def _held_here() -> bool:
    try:
        with open(HOLD_MARKER) as marker:
            return marker.read().strip() == str(os.getpid())
    except OSError:
        return False


class HeldSetWeightsPolicy(PPOTorchPolicy):  # type: ignore[misc]
    """PPO's torch policy, whose ``set_weights`` blocks in the process the marker names (for at
    most two minutes, so a broken test cannot hang a worker for ever)."""

    def set_weights(self, weights: Any) -> None:
        deadline = time.monotonic() + 120
        while _held_here() and time.monotonic() < deadline:
            time.sleep(0.05)
        super().set_weights(weights)


def add_held_snapshot(algo: Any, policy_id: str) -> None:
    """The documented snapshot copy, of a policy whose remote ``set_weights`` can be held."""
    src = algo.get_policy("main")
    algo.add_policy(
        policy_id,
        HeldSetWeightsPolicy,
        observation_space=src.observation_space,
        action_space=src.action_space,
        config=getattr(src, "config", {}).copy(),
    )
    algo.get_policy(policy_id).set_weights(src.get_weights())


# League scale: the policy cache, on_create_policy and rebuilds from the stash, per process.


def _process_counters() -> dict[str, Any]:
    """Counters kept in this process on a module every process has imported (this module is
    pickled by value, so its own globals are not shared between calls)."""
    import ray.rllib

    counters: dict[str, Any] | None = getattr(ray.rllib, "_rllib_addpolicy_fix_tests", None)
    if counters is None:
        counters = {"created": [], "rebuilt": 0}
        ray.rllib._rllib_addpolicy_fix_tests = counters  # type: ignore[attr-defined]
    return counters


class CountsCreatedPolicies(DefaultCallbacks):  # type: ignore[misc]
    """Records every ``on_create_policy`` call of the process it runs in."""

    def on_create_policy(self, *, policy_id: str, policy: Any) -> None:
        _process_counters()["created"].append(policy_id)


def count_rebuilds(worker: Any = None) -> dict[str, Any]:
    """Start counting ``Policy.from_state`` (the LRU policy cache rebuilding a stashed policy)
    in this process, and reset the counters; returns them."""
    counters = _process_counters()
    if not getattr(Policy.from_state, "_counted", False):
        rebuild = Policy.from_state

        def counted(*args: Any, **kwargs: Any) -> Any:
            _process_counters()["rebuilt"] += 1
            return rebuild(*args, **kwargs)

        counted._counted = True  # type: ignore[attr-defined]
        Policy.from_state = staticmethod(counted)
    counters["created"] = []
    counters["rebuilt"] = 0
    return dict(counters)


def counters(worker: Any = None) -> dict[str, Any]:
    counters = _process_counters()
    return {"created": list(counters["created"]), "rebuilt": counters["rebuilt"]}


_TEST_PROCESS = os.getpid()  # pickled with the class below: the driver's pid on every worker


class BuildsOnTheDriverOnly(PPOTorchPolicy):  # type: ignore[misc]
    """PPO's torch policy, which fails to build anywhere but in the test process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if os.getpid() != _TEST_PROCESS:
            raise ValueError("this policy cannot be built on a remote worker")
        super().__init__(*args, **kwargs)


# The point of use: what each remote sample was taken with, by policy, digested on the worker.


def map_second_player_to_the_league(agent_id: Any, *args: Any, **kwargs: Any) -> str:
    """player_0 is "main"; player_1 faces a random other policy of the worker (a slot or a
    snapshot), read from the worker's own map so snapshots join without a new mapping."""
    import random

    if agent_id == PLAYERS[0]:
        return "main"
    worker = kwargs.get("worker") or (args[1] if len(args) > 1 else None)
    policy_map = getattr(worker, "policy_map", None)
    others = sorted(pid for pid in (policy_map.keys() if policy_map else ()) if pid != "main")
    return random.choice(others) if others else "main"


class BatchProbe(DefaultCallbacks):  # type: ignore[misc]
    """On each worker, at the end of each sample: a digest of the weights of every policy that
    sampled in it (independent of the fix: what the policy object holds at that moment)."""

    def on_sample_end(self, *args: Any, **kwargs: Any) -> None:
        worker = kwargs.get("worker") or kwargs.get("env_runner")
        samples = kwargs.get("samples")
        if worker is None or samples is None:
            return
        policy_batches = getattr(samples, "policy_batches", None)
        in_batch = list(policy_batches) if isinstance(policy_batches, dict) else ["default_policy"]
        seen = {pid: digest(worker.policy_map[pid].get_weights()) for pid in in_batch}
        worker.__dict__.setdefault("_probe_batches", []).append(seen)


def take_probe_batches(worker: Any) -> list[dict[str, str]]:
    """What :class:`BatchProbe` recorded on this worker process since the last call."""
    return list(worker.__dict__.pop("_probe_batches", []))


def stale_batches(batches: list[dict[str, str]], expected: dict[str, str]) -> tuple[int, int]:
    """(policy batches of ``expected``'s policies, how many of them held other weights)."""
    sampled = stale = 0
    for batch in batches:
        for pid, held in batch.items():
            if pid in expected:
                sampled += 1
                stale += held != expected[pid]
    return sampled, stale


def league_policies(policy_ids: tuple[str, ...]) -> dict[str, Any]:
    return {pid: PolicySpec(None, OBSERVATION_SPACE, ACTION_SPACE, {}) for pid in policy_ids}
