"""``train()`` time with and without the shim when nothing changed, at N snapshots.

One algorithm, N snapshots added (and delivered) up front; then blocks of iterations alternate
between the shim installed and uninstalled (off, on, on, off, ...), so noise hits both alike. Each
block starts with one untimed iteration: ``uninstall()`` drops the shim's tensor cache, which
steady use keeps. With nothing changed the shim
broadcasts nothing; what it costs is the per-iteration check of N policies' weight stamps.
Target: <= 1 % overhead.

    python benchmarks/iteration_overhead.py [--snapshots 100] [--iterations 40]
"""

from __future__ import annotations

import statistics
import sys
import time

import ray
from _league import alternating_blocks, league, league_arguments, median_seconds, start_ray

import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import broadcast as _broadcast
from rllib_addpolicy_fix.syncing import tracking as _tracking


def main() -> int:
    args = league_arguments(__doc__.splitlines()[0]).parse_args()
    start_ray(args.workers)
    algo = league(args)  # its first train() delivers whatever is pending (the build's "main")
    times: dict[bool, list[float]] = {True: [], False: []}
    broadcast = 0
    record = _tracking.record_for(_compat.training_group(algo))
    checks_per_iteration: list[int] = []
    uses_per_iteration: list[int] = []
    full_checks = [0]
    real_pending = _tracking.GroupRecord.pending

    def counted_pending(self: _tracking.GroupRecord) -> list[str]:
        full_checks[0] += 1
        return real_pending(self)

    _tracking.GroupRecord.pending = counted_pending  # type: ignore[method-assign]
    for shim in alternating_blocks(args):
        fix.install() if shim else fix.uninstall()
        algo.train()  # untimed: uninstall() drops the shim's tensor cache; steady use keeps it
        _tracking.record_for(_compat.training_group(algo)).mark_delivered(["main"])
        for _ in range(args.block):
            uses, checked = record.uses, full_checks[0]
            started = time.perf_counter()
            result = algo.train()
            times[shim].append(time.perf_counter() - started)
            if shim:
                broadcast += result[fix.RESULT_KEY]["policies_broadcast"]
                uses_per_iteration.append(record.uses - uses)
                checks_per_iteration.append(full_checks[0] - checked)
            else:
                # Outside the timing: record RLlib's own sync of "main" as the (absent) wrapper
                # would have; an artifact of toggling the shim, not a cost of using it.
                _tracking.record_for(_compat.training_group(algo)).mark_delivered(["main"])
    fix.install()
    # The shim's own work per iteration (checking N policies once per iteration, sending
    # nothing), timed alone: a figure machine noise on train() cannot hide.
    one_check = median_seconds(lambda: _broadcast.push_before_use(record.group))
    algo.stop()
    ray.shutdown()
    with_shim, without = statistics.median(times[True]), statistics.median(times[False])
    overhead = with_shim / without - 1.0
    check = one_check * statistics.median(checks_per_iteration)
    print(
        f"train() with N={args.snapshots} snapshots, nothing changed, W={args.workers}, "
        f"{len(times[True])} iterations each, in alternating blocks of {args.block} "
        f"(Ray {ray.__version__})"
    )
    print(f"  without shim: median {without * 1000:.1f} ms")
    print(f"  with shim:    median {with_shim * 1000:.1f} ms")
    print(
        f"  overhead: {overhead * 100:+.2f} % (target <= 1 %: "
        f"{'met' if overhead <= 0.01 else 'MISSED'}); policies broadcast: {broadcast}"
    )
    print(
        f"  the shim's per-iteration work, timed alone: "
        f"{statistics.median(checks_per_iteration)} full checks of {args.snapshots + 1} "
        f"policies for {statistics.median(uses_per_iteration)} remote calls RLlib made "
        f"x {one_check * 1000:.2f} ms"
        f" = {check * 1000:.2f} ms = {check / without * 100:.2f} % of train()"
    )
    return 0 if overhead <= 0.01 and broadcast == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
