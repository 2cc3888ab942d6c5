"""``train()`` time inside a Tune trial with and without the shim, nothing changed, N snapshots.

The trial is an ordinary ``Tuner(PPO)`` trial; a callback adds N snapshots at its start and then
switches the shim off and on in alternating blocks of iterations (off, on, on, off, ...) inside
the trial's process, so noise hits both alike. Each block's first iteration is not timed
(``uninstall()`` drops the shim's tensor cache). The time is Tune's own ``time_this_iter_s``.
Target: <= 1 % overhead.

    python benchmarks/tune_overhead.py [--snapshots 100] [--iterations 40] [--block 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from typing import Any

import _league
import ray
import ray.cloudpickle
from ray import tune
from ray.rllib.algorithms.callbacks import DefaultCallbacks
from ray.rllib.algorithms.ppo import PPO

from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import tracking as _tracking
from rllib_addpolicy_fix.tools import demo


def alternating_shim(snapshots: int, block: int) -> type:
    class AlternatingShim(DefaultCallbacks):  # type: ignore[misc]
        def on_algorithm_init(self, *, algorithm: Any, **kwargs: Any) -> None:
            _league.add_snapshots(algorithm, snapshots)

        def on_train_result(self, *, algorithm: Any, result: dict[str, Any], **kwargs: Any) -> None:
            import rllib_addpolicy_fix as fix

            done = int(result["training_iteration"])  # 1 is the warm-up
            this_block, position = divmod(done - 2, block + 1)
            result["shim_on"] = int(fix.is_installed())
            result["timed"] = int(done >= 2 and position > 0)
            upcoming_block, _ = divmod(done - 1, block + 1)
            on = upcoming_block % 4 in (1, 2)  # off, on, on, off, ...
            fix.install() if on else fix.uninstall()
            # RLlib's own sync of "main", recorded as the absent wrapper would have (an artifact
            # of toggling the shim, not a cost of using it).
            _tracking.record_for(_compat.training_group(algorithm)).mark_delivered(["main"])

    return AlternatingShim


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=40, help="timed, per mode")
    parser.add_argument("--block", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    args = parser.parse_args()
    ray.init(num_cpus=args.workers + 1, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(_league)  # the trial's process cannot import it
    blocks = 2 * max(args.iterations // args.block, 1)
    config = demo.league_config(
        args.workers,
        hidden=tuple(args.hidden),
        train_batch_size=400,
        policy_map_capacity=args.snapshots + 10,
    ).callbacks(alternating_shim(args.snapshots, args.block))
    with tempfile.TemporaryDirectory() as storage:
        run_config = tune.RunConfig if hasattr(tune, "RunConfig") else ray.train.RunConfig
        (result,) = list(
            tune.Tuner(
                PPO,
                param_space=config,
                run_config=run_config(
                    stop={"training_iteration": 1 + blocks * (args.block + 1)},
                    storage_path=storage,
                    verbose=0,
                ),
            ).fit()
        )
        assert result.error is None, result.error
        rows = result.metrics_dataframe
    timed = rows[rows["timed"] == 1]
    with_shim = statistics.median(timed[timed["shim_on"] == 1]["time_this_iter_s"])
    without = statistics.median(timed[timed["shim_on"] == 0]["time_this_iter_s"])
    broadcast = int(timed[timed["shim_on"] == 1]["rllib_addpolicy_fix/policies_broadcast"].sum())
    overhead = with_shim / without - 1.0
    print(
        f"train() inside a Tune trial, N={args.snapshots} snapshots, nothing changed, "
        f"W={args.workers}, {len(timed) // 2} timed iterations each, blocks of {args.block} "
        f"(Ray {ray.__version__})"
    )
    print(f"  without shim: median {without * 1000:.1f} ms")
    print(f"  with shim:    median {with_shim * 1000:.1f} ms")
    print(
        f"  overhead: {overhead * 100:+.2f} % (target <= 1 %: "
        f"{'met' if overhead <= 0.01 else 'MISSED'}); policies broadcast: {broadcast}"
    )
    ray.shutdown()
    return 0 if overhead <= 0.01 and broadcast == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
