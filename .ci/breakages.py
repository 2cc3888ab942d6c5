"""Break the fix on purpose, one way at a time, and show which test files catch it.

Not part of CI (``bash .ci/run``): run it by hand in an environment with the package and a
tested Ray installed, from the repository root::

    python .ci/breakages.py [--only NAME] [--files tests/test_core.py ...]

For each breakage it runs the test files that claim to cover it, with
``RLLIB_ADDPOLICY_FIX_TEST_BREAKAGE=<name>`` set: ``tests/conftest.py`` then applies the
breakage in the test process before any test runs (not in other processes, such as a Tune
trial's). Each file must fail (``-x``: at the first failing test). Prints a table; exits 1 if a
breakage went uncaught by a file that claims it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

#: breakage -> the test files that claim to catch it.
CLAIMS: dict[str, tuple[str, ...]] = {
    "held-adds-never-sent": ("tests/test_core.py", "tests/test_point_of_use.py"),
    "pre-use-broadcast-skipped": ("tests/test_core.py", "tests/test_do_no_harm.py"),
    "restart-check-off": ("tests/test_restarts.py",),
    "evaluation-sync-narrowed-to-nothing": ("tests/test_evaluation_sets.py",),
    "remote-adds-without-the-drivers-state": ("tests/test_core.py", "tests/test_reliability.py"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CLAIMS))
    parser.add_argument("--files", nargs="*")
    args = parser.parse_args()
    rows = []
    for name, files in CLAIMS.items():
        if args.only and name != args.only:
            continue
        for path in args.files or files:
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "pytest", path, "-x", "-q", "-p", "no:cacheprovider"],
                env={
                    **os.environ,
                    "RLLIB_ADDPOLICY_FIX_TEST_BREAKAGE": name,
                    "RAY_ADDRESS": "local",
                },
                capture_output=True,
                text=True,
            )
            last = (done.stdout.strip().splitlines() or [""])[-1]
            caught = done.returncode == 1
            rows.append((name, path, caught, last, time.monotonic() - started))
            print(f"{name:<40} {path:<32} {'caught' if caught else 'MISSED'}  {last}", flush=True)
    print("\n| breakage | test file | caught | pytest's last line |\n|---|---|---|---|")
    for name, path, caught, last, _ in rows:
        print(f"| {name} | {path} | {'yes' if caught else '**no**'} | {last} |")
    return 0 if all(caught for _, _, caught, _, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
