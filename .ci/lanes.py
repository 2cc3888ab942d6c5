"""Runs the nox sessions that ``python -m nox`` runs, two at a time, and prints their times.

The machine has two cores and one test session keeps about one and a half of them busy (a
driver that waits on its remote workers, Tune's polling), so two sessions side by side finish
sooner than one after the other. Each lane takes the next session from one queue, longest
first; every line a session prints is shown with its session's name in front. At the end: the
minutes of each test file in each test session, one table of each session's minutes, and one
closing line with the tests of all sessions counted.

A test session fails here too when tests went missing: its JUnit report must collect and pass
at least the floors of ``tests/expected_runs.py`` for its release, and skip nothing that file
does not list for that release, with the same reason. ``LANES_RECORD=<file>`` also writes what
each session collected, passed and skipped there (JSON), to update that file from a real run.
Standard library only: it runs where nox is installed, before any test environment exists.
"""

from __future__ import annotations

import json
import os
import queue
import re
import runpy
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


EXPECTED = Path(__file__).resolve().parent.parent / "tests" / "expected_runs.py"


@dataclass
class Observed:
    """What one test session's JUnit report holds."""

    collected: int = 0
    passed: int = 0
    #: test id -> the reason pytest gave for skipping it.
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    session: str
    lane: int
    seconds: float = 0.0
    returncode: int = -1
    counts: dict[str, int] = field(default_factory=dict)
    #: Seconds per test file, from the session's JUnit report (test sessions only).
    files: dict[str, float] = field(default_factory=dict)
    observed: Observed | None = None
    #: Why the session fails the floors of ``tests/expected_runs.py`` (empty: it does not).
    shortfalls: list[str] = field(default_factory=list)

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


def observed(report: Path) -> Observed | None:
    """Collected, passed and skipped tests of a JUnit report (None without one)."""
    if not report.is_file():
        return None
    seen = Observed()
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname') or ''}::{case.get('name') or ''}"
        seen.collected += 1
        skipped = case.find("skipped")
        if skipped is not None:
            seen.skipped[test_id] = skipped.get("message") or ""
        elif case.find("failure") is None and case.find("error") is None:
            seen.passed += 1
    return seen


def shortfalls(release: str, seen: Observed | None) -> list[str]:
    """Why a release's session falls short of ``tests/expected_runs.py``."""
    expected = runpy.run_path(str(EXPECTED))
    floors, skips = expected["FLOORS"].get(release), expected["SKIPS"].get(release, {})
    if floors is None:
        return [f"no floors for Ray {release} in {EXPECTED.name}"]
    if seen is None:
        return ["no JUnit report"]
    found = []
    for what in ("collected", "passed"):
        if getattr(seen, what) < floors[what]:
            found.append(f"{what} {getattr(seen, what)} < floor {floors[what]}")
    for test_id, reason in sorted(seen.skipped.items()):
        if skips.get(test_id) != reason:
            found.append(f"skip not listed for Ray {release}: {test_id} ({reason})")
    return found


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
        if session.startswith("tests("):
            outcome.observed = observed(report)
            outcome.shortfalls = shortfalls(outcome.label, outcome.observed)
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
        verdict = "ok" if o.returncode == 0 else f"FAILED (exit {o.returncode})"
        if o.returncode == 0 and o.shortfalls:
            verdict = "FAILED (tests missing)"
        result = verdict + (f": {tests}" if tests else "")
        print(f"{o.session:<22} {o.lane:>4} {o.seconds / 60:>8.1f}  {result}")
    print(f"{'wall clock':<22} {'':>4} {wall / 60:>8.1f}")
    passed = sum(o.counts.get("passed", 0) for o in outcomes)
    failed = sum(o.counts.get("failed", 0) + o.counts.get("error", 0) for o in outcomes)
    skipped = sum(o.counts.get("skipped", 0) for o in outcomes)
    for o in outcomes:
        for shortfall in o.shortfalls:
            print(f"[{o.label}] tests missing: {shortfall}")
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
    record = os.environ.get("LANES_RECORD")
    if record:
        Path(record).write_text(
            json.dumps(
                {o.label: o.observed.__dict__ for o in outcomes if o.observed is not None},
                indent=1,
                sort_keys=True,
            )
        )
    everything_ran = len(outcomes) == len(sessions)
    complete = all(o.returncode == 0 and not o.shortfalls for o in outcomes)
    return 0 if everything_ran and complete else 1


if __name__ == "__main__":
    sys.exit(main())
