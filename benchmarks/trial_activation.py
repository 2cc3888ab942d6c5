"""What activation in a job's worker processes adds to a worker's start (target: <= 2 ms).

Two measurements, side by side in one run:

1. The setup hook itself, as a worker runs it: unpickle the hook Ray stores for the job and
   call it (``ray.cloudpickle`` is already imported in a worker, so its import is not counted),
   in fresh interpreters, alternating with an empty hook.
2. Whole actor starts: two Ray jobs in alternation, one started through the shim's
   ``ray.init`` (package in ``py_modules`` plus the setup hook) and one with the shim off; each
   starts actors one after the other and times each until its first method returns. This is
   dominated by Ray's own process start and noisy on a shared machine; it shows the order of
   magnitude, the first measurement the hook's own cost.

    python benchmarks/trial_activation.py [--runs 200] [--jobs 3] [--actors 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

TARGET_MS = 2.0

_TIME_HOOK = """
import sys, time, ray.cloudpickle as cp
payload = open(sys.argv[1], "rb").read()
started = time.perf_counter()
cp.loads(payload)()
print((time.perf_counter() - started) * 1000.0)
"""

_ACTOR_STARTS = """
import json, statistics, sys, time
import rllib_addpolicy_fix  # noqa: F401 - off when RLLIB_ADDPOLICY_FIX=0
import ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

@ray.remote(num_cpus=0)
class Probe:
    def ping(self):
        return 1

ray.get(Probe.remote().ping.remote())  # warm: the job's runtime environment is set up once
times = []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    actor = Probe.remote()
    ray.get(actor.ping.remote())
    times.append((time.perf_counter() - started) * 1000.0)
    ray.kill(actor)
print(json.dumps(times))
ray.shutdown()
"""


def hook_payloads(directory: str) -> dict[str, str]:
    import ray.cloudpickle

    from rllib_addpolicy_fix.activation import startup_hook as _startup_hook

    ray.cloudpickle.register_pickle_by_value(_startup_hook)
    paths = {}
    for label, hook in (("shim", _startup_hook.worker_setup_hook(None)), ("empty", lambda: None)):
        paths[label] = os.path.join(directory, f"{label}.pkl")
        with open(paths[label], "wb") as out:
            out.write(ray.cloudpickle.dumps(hook))
    return paths


def time_hook(path: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _TIME_HOOK, path], capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def actor_starts(actors: int, shim: bool) -> list[float]:
    env = dict(os.environ, RLLIB_ADDPOLICY_FIX="1" if shim else "0")
    done = subprocess.run(
        [sys.executable, "-c", _ACTOR_STARTS, str(actors)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--actors", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        payloads = hook_payloads(tmp)
        hook: dict[str, list[float]] = {"shim": [], "empty": []}
        for run in range(args.runs):
            order = ("shim", "empty") if run % 2 else ("empty", "shim")
            for label in order:
                hook[label].append(time_hook(payloads[label]))
    starts: dict[bool, list[float]] = {True: [], False: []}
    for job in range(args.jobs):
        for shim in (True, False) if job % 2 else (False, True):
            starts[shim].extend(actor_starts(args.actors, shim))
    hook_ms = {label: statistics.median(values) for label, values in hook.items()}
    added = hook_ms["shim"] - hook_ms["empty"]
    print(f"setup hook, median of {args.runs} fresh interpreters each:")
    print(f"  shim's hook {hook_ms['shim']:.3f} ms, empty hook {hook_ms['empty']:.3f} ms")
    print(f"  added by the shim: {added:.3f} ms (target <= {TARGET_MS} ms)")
    on, off = statistics.median(starts[True]), statistics.median(starts[False])
    print(f"actor start to first reply, median of {len(starts[True])} each ({args.jobs} jobs):")
    print(f"  shim on {on:.1f} ms, off {off:.1f} ms, ratio {on / off:.3f}")
    return 0 if added <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
