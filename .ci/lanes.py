"""Runs the nox sessions that ``python -m nox`` runs, two at a time, and prints their times.

The machine has two cores and one test session keeps about one and a half of them busy (a
driver that waits on its remote workers, Tune's polling), so two sessions side by side finish
sooner than one after the other. Each lane takes the next session from one queue, longest
first; every line a session prints is shown with its session's name in front. At the end: the
minutes of each test file in each test session, one table of each session's minutes, and one
closing line with the tests of all sessions counted.
Standard library only: it runs where nox is installed, before any test environment exists.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

LANES = 2
SUMMARY = re.compile(r"^=+ (?P<counts>.*?) in [\d.]+s")
COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)")


@dataclass
class Outcome:
    session: str
    lane: int
    seconds: float = 0.0
    returncode: int = -1
    counts: dict[str, int] = field(default_factory=dict)
    #: Seconds per test file, from the session's JUnit report (test sessions only).
    files: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return re.sub(r"tests\(ray='(.*)'\)", r"\1", self.session)


def selected_sessions() -> list[str]:
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    names = [s["session"] for s in json.loads(listed.stdout)]
    tests = [name for name in names if name.startswith("tests(")]
    # Longest first: the newest release runs the most tests, then the oldest; the checks that
    # take under a minute fill in last.
    ordered = tests[-1:] + tests[:1] + tests[1:-1]
    return ordered + [name for name in names if name not in ordered]


def file_seconds(report: Path) -> dict[str, float]:
    seconds: dict[str, float] = {}
    if not report.is_file():
        return seconds
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = (case.get("classname") or "(collection)").rsplit(".", 1)[-1]
        seconds[name] = seconds.get(name, 0.0) + float(case.get("time") or 0.0)
    return seconds


def run_lane(
    lane: int, todo: queue.Queue[str], outcomes: list[Outcome], lock: threading.Lock, reports: Path
) -> None:
    while True:
        try:
            session = todo.get_nowait()
        except queue.Empty:
            return
        outcome = Outcome(session, lane)
        report = reports / f"{outcome.label}.xml"
        junit = ["--", f"--junitxml={report}"] if session.startswith("tests(") else []
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "nox", "-s", session, *junit],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        assert process.stdout is not None
        for line in process.stdout:
            found = SUMMARY.match(line.strip())
            if found:
                outcome.counts = {
                    kind.rstrip("s") if kind.startswith("error") else kind: int(n)
                    for n, kind in COUNT.findall(found.group("counts"))
                }
            with lock:
                print(f"[{outcome.label}] {line}", end="", flush=True)
        outcome.returncode = process.wait()
        outcome.seconds = time.monotonic() - started
        outcome.files = file_seconds(report)
        with lock:
            outcomes.append(outcome)


def print_tables(sessions: list[str], outcomes: list[Outcome], wall: float) -> None:
    outcomes.sort(key=lambda o: sessions.index(o.session))
    tested = [o for o in outcomes if o.files]
    if tested:
        first = tested[0].files
        files = sorted({f for o in tested for f in o.files}, key=lambda f: -first.get(f, 0.0))
        print("\nTest minutes by file:")
        print(f"{'file':<30}" + "".join(f"{o.label:>9}" for o in tested))
        for name in files:
            cells = [
                f"{o.files[name] / 60:>9.1f}" if name in o.files else f"{'-':>9}" for o in tested
            ]
            print(f"{name:<30}" + "".join(cells))
    print(f"\nCI time by session ({LANES} lanes side by side):")
    print(f"{'session':<22} {'lane':>4} {'minutes':>8}  result")
    for o in outcomes:
        tests = ", ".join(f"{n} {kind}" for kind, n in o.counts.items())
        result = ("ok" if o.returncode == 0 else f"FAILED (exit {o.returncode})") + (
            f": {tests}" if tests else ""
        )
        print(f"{o.session:<22} {o.lane:>4} {o.seconds / 60:>8.1f}  {result}")
    print(f"{'wall clock':<22} {'':>4} {wall / 60:>8.1f}")
    passed = sum(o.counts.get("passed", 0) for o in outcomes)
    failed = sum(o.counts.get("failed", 0) + o.counts.get("error", 0) for o in outcomes)
    skipped = sum(o.counts.get("skipped", 0) for o in outcomes)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")


def main() -> int:
    todo: queue.Queue[str] = queue.Queue()
    sessions = selected_sessions()
    for session in sessions:
        todo.put(session)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as reports:
        lanes = [
            threading.Thread(target=run_lane, args=(lane, todo, outcomes, lock, Path(reports)))
            for lane in range(1, LANES + 1)
        ]
        for thread in lanes:
            thread.start()
        for thread in lanes:
            thread.join()
    print_tables(sessions, outcomes, time.monotonic() - started)
    everything_ran = len(outcomes) == len(sessions)
    return 0 if everything_ran and all(o.returncode == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
