"""What the check at the point of use costs when every worker is in sync, at N snapshots.

One algorithm (PPO, N snapshots added and delivered up front, W remote workers); blocks of
iterations alternate between the check on and off (the rest of the fix on both ways: off, on,
on, off, ...), so noise hits both alike. Reported: the median ``train()`` time each way, the
remote calls per iteration each way (counted in RLlib's actor manager: the check rides along
with RLlib's own calls, so there must be none extra), the catalog fetches and catch-ups (none
while in sync). Then one snapshot is overwritten on every remote worker by user code: the next
iteration catches up (one fetch per worker of what it lacks).

    python benchmarks/point_of_use.py [--snapshots 100] [--iterations 40] [--workers 2]

Target: at most 1 % of ``train()``, no extra remote call.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from typing import Any

import ray
from _league import alternating_blocks, league, league_arguments, median_seconds, start_ray

import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import broadcast as _broadcast
from rllib_addpolicy_fix.syncing import remote_check
from rllib_addpolicy_fix.syncing import transport as _transport
from rllib_addpolicy_fix.syncing import versions as _versions


def add_to_weights(worker: Any, policy_id: str) -> None:
    policy = worker.policy_map[policy_id]
    policy.set_weights({k: v + 1.0 for k, v in policy.get_weights().items()})


def time_check_on_worker(worker: Any, check: dict[str, Any], repeats: int = 200) -> float:
    """The worker's side of a call's check (all in sync; the expected versions fetched once
    and kept), timed alone on the worker: seconds."""
    carried = {"ref": check["ref"], "catch_up": True, "harvest": True}

    def once() -> None:
        resolved = remote_check._resolved(worker, carried)
        assert resolved is not None
        remote_check._check(worker, resolved)

    for _ in range(5):
        once()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    args = league_arguments(__doc__.splitlines()[0]).parse_args()
    start_ray(args.workers)
    algo = league(args)
    group = _compat.training_group(algo)
    manager = _compat.worker_manager(group)
    name = next(
        n
        for n in ("_call_actors", "_FaultTolerantActorManager__call_actors")
        if hasattr(manager, n)
    )
    original = getattr(manager, name)
    calls = [0]

    def counted(*call_args: Any, **call_kwargs: Any) -> Any:
        calls[0] += 1
        return original(*call_args, **call_kwargs)

    setattr(manager, name, counted)
    times: dict[bool, list[float]] = {True: [], False: []}
    remote_calls: dict[bool, list[int]] = {True: [], False: []}
    caught_up = 0
    for check in alternating_blocks(args):
        _versions.CHECK_AT_USE = check
        algo.train()  # untimed: the first iteration after a switch builds the check anew
        for _ in range(args.block):
            before = calls[0]
            started = time.perf_counter()
            result = algo.train()
            times[check].append(time.perf_counter() - started)
            remote_calls[check].append(calls[0] - before)
            caught_up += result[fix.RESULT_KEY]["training_caught_up"]
    _versions.CHECK_AT_USE = True
    algo.train()
    # The check's own work per call, timed alone: the driver's (the cached check, the wrapper,
    # pickling what rides along) and the worker's (comparing N stamps); figures machine noise
    # on train() cannot hide.
    check = _broadcast.check_at_use(group)[1]
    assert check is not None
    carried = functools.partial(
        remote_check.from_the_object_store,
        _rllib_addpolicy_fix_code=_versions.code_ref(),
        _rllib_addpolicy_fix_inner=add_to_weights,
        _rllib_addpolicy_fix_check={"ref": check["ref"], "catch_up": True, "harvest": True},
    )
    driver_s = median_seconds(lambda: _broadcast.check_at_use(group)) + median_seconds(
        lambda: ray.cloudpickle.dumps(carried)
    )
    carried_bytes = len(ray.cloudpickle.dumps(carried)) - len(ray.cloudpickle.dumps(add_to_weights))
    timed = functools.partial(time_check_on_worker, check=check)
    worker_s = statistics.median(t for _, t in _transport.foreach_remote(group, timed))
    overwrite = functools.partial(add_to_weights, policy_id="main_v0")
    _transport.foreach_remote(group, overwrite)
    started = time.perf_counter()
    after = algo.train()
    catch_up_s = time.perf_counter() - started
    figures = after[fix.RESULT_KEY]
    algo.stop()
    ray.shutdown()
    on, off = statistics.median(times[True]), statistics.median(times[False])
    overhead = on / off - 1.0
    extra_calls = statistics.median(remote_calls[True]) - statistics.median(remote_calls[False])
    print(
        f"train() with N={args.snapshots} snapshots in sync, W={args.workers}, "
        f"{len(times[True])} iterations each way, alternating blocks of {args.block} "
        f"(Ray {ray.__version__})"
    )
    print(f"  check at use off: median {off * 1000:.1f} ms")
    print(f"  check at use on:  median {on * 1000:.1f} ms")
    print(
        f"  overhead: {overhead * 100:+.2f} % (target <= 1 %: "
        f"{'met' if overhead <= 0.01 else 'MISSED'})"
    )
    print(
        f"  remote calls per iteration: {statistics.median(remote_calls[False]):g} off, "
        f"{statistics.median(remote_calls[True]):g} on; catch-ups while in sync: {caught_up}"
    )
    calls = statistics.median(remote_calls[True])  # each reaches every remote worker
    alone = (driver_s * args.workers + worker_s) * calls
    print(
        f"  per call, timed alone: driver {driver_s * 1e6:.0f} us per worker reached, worker "
        f"{worker_s * 1e6:.0f} us, {carried_bytes} bytes carried; x {calls:g} calls per "
        f"iteration = {alone * 1000:.2f} ms = {alone / off * 100:.2f} % of train()"
    )
    print(
        f"  one snapshot overwritten on every worker: the next train() took "
        f"{catch_up_s * 1000:.1f} ms, {figures['training_caught_up']} catch-ups, "
        f"{figures['training_stale_batches']} stale batches"
    )
    return 0 if overhead <= 0.01 and extra_calls == 0 and caught_up == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
