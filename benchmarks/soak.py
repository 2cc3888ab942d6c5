"""The full soak: 200 add / refresh / remove cycles on a running PPO league (the CI test runs a
shortened one). Every cycle must be consistent on every remote worker; at the end the shim's
tracking must hold exactly the live policies, and the driver's memory growth is printed.

    python benchmarks/soak.py [--cycles 200] [--workers 2] [--without-shim]
"""

from __future__ import annotations

import argparse
import sys

import ray

import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import tracking as _tracking
from rllib_addpolicy_fix.tools import demo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--without-shim",
        action="store_true",
        help="the same cycles on RLlib alone, to compare the memory growth",
    )
    args = parser.parse_args()
    ray.init(
        num_cpus=args.workers + 2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    fix.uninstall() if args.without_shim else fix.install()
    algo = demo.build_league(args.workers)
    algo.train()
    seen = []
    for cycle in demo.soak(algo, args.cycles):
        seen.append(cycle)
        if (cycle.index + 1) % 25 == 0:
            print(
                f"  cycle {cycle.index + 1}/{args.cycles}: driver RSS "
                f"{cycle.rss_bytes / 2**20:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
    truth = _compat.local_worker(_compat.training_group(algo))
    live = set(_compat.policy_ids(truth))
    tracked = set(_tracking.record_for(_compat.training_group(algo)).delivered)
    algo.stop()
    ray.shutdown()

    inconsistent = [c.index for c in seen if not c.consistent]
    settled = seen[min(10, len(seen) - 1)]
    growth = seen[-1].rss_bytes - settled.rss_bytes
    per_cycle = growth / max(len(seen) - 1 - settled.index, 1)
    print(
        f"{args.cycles} cycles (W={args.workers}, Ray {ray.__version__}, shim "
        f"{'off' if args.without_shim else 'on'}): "
        f"{args.cycles - len(inconsistent)} consistent, inconsistent cycles: {inconsistent}"
    )
    print(f"  tracking == live policies: {tracked == live} ({len(live)} live)")
    print(
        f"  driver RSS: {settled.rss_bytes / 2**20:.0f} MiB after cycle {settled.index + 1} -> "
        f"{seen[-1].rss_bytes / 2**20:.0f} MiB after cycle {len(seen)} "
        f"({growth / 2**20:+.1f} MiB, {per_cycle / 2**10:+.1f} KiB per cycle)"
    )
    return 0 if args.without_shim or (not inconsistent and tracked == live) else 1


if __name__ == "__main__":
    sys.exit(main())
