"""What each CI test session must run, per tested Ray release (``.ci/lanes.py`` checks it).

A session fails when it collects or passes fewer tests than ``FLOORS`` (tests went missing: a
module that no longer imports, a test an edit deselected) or skips a test ``SKIPS`` does not
list for its release with that reason (a silent ``importorskip``, a missing ``.pth``, a marker
that matches more than it should). Releases are those of ``_compat/releases.py`` (a test keeps
the two in step). Recorded from a full run (``LANES_RECORD=... bash .ci/run``); update both when
tests are added or moved.
"""

from __future__ import annotations

FLOORS: dict[str, dict[str, int]] = {}

SKIPS: dict[str, dict[str, str]] = {}
