"""Interpreter start-up cost of the .pth hook: ``python -c pass`` with and without it.

Two throw-away virtual environments, identical but for the hook's two files, timed in
alternation in one run so machine noise hits both alike. Target: median difference <= 2 ms.

    python benchmarks/startup.py [--runs 300]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bootstrap"))
import make_pth  # noqa: E402 - the same generator the wheel build uses

TARGET_MS = 2.0


def make_env(where: Path, with_hook: bool) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if with_hook:
        make_pth.write_pth(Path(purelib))
    subprocess.run([str(python), "-c", "pass"], check=True)  # warm the bytecode caches
    return python


def time_start(python: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(python), "-c", "pass"], check=True)
    return (time.perf_counter() - started) * 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        without = make_env(Path(tmp) / "without", with_hook=False)
        with_hook = make_env(Path(tmp) / "with", with_hook=True)
        times: dict[str, list[float]] = {"without": [], "with": []}
        for run in range(args.runs):  # alternate the order so drift hits both alike
            pair = [("without", without), ("with", with_hook)]
            for label, python in pair if run % 2 else reversed(pair):
                times[label].append(time_start(python))
    med = {label: statistics.median(values) for label, values in times.items()}
    diff = med["with"] - med["without"]
    print(
        f"python -c pass, {args.runs} runs each, alternating ({sys.version.split()[0]}, "
        f"{sysconfig.get_platform()})"
    )
    for label in ("without", "with"):
        values = times[label]
        print(
            f"  {label:>7} .pth: median {med[label]:6.2f} ms   "
            f"p10 {statistics.quantiles(values, n=10)[0]:6.2f}   "
            f"p90 {statistics.quantiles(values, n=10)[-1]:6.2f}"
        )
    print(
        f"  difference: {diff:+.2f} ms (ratio {med['with'] / med['without']:.3f}); "
        f"target <= {TARGET_MS} ms: {'met' if diff <= TARGET_MS else 'MISSED'}"
    )
    return 0 if diff <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
