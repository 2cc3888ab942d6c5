"""``python -m rllib_addpolicy_fix doctor``: is the fix in effect here, and if not, why not."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata

from .. import _compat, _settings
from .._compat import releases
from ..activation.job_env import find_pth
from ..patching import install as _install

#: Run in a fresh interpreter: does an unedited script that imports RLlib get the fix?
_PROBE = """
import json, sys
import ray.rllib.algorithms.algorithm
shim = sys.modules.get("rllib_addpolicy_fix.patching.install")
print(json.dumps({"active": bool(shim and shim.is_installed()),
                  "targets": shim.wrapped_targets() if shim else [],
                  "missing": shim.missing_targets() if shim else []}))
"""


@dataclass
class Diagnosis:
    python: str
    executable: str
    ray: str | None
    ray_supported: bool
    supported_range: str
    tested_releases: list[str]
    torch: str | None
    env_var: str | None
    env_disables: bool
    pth_path: str | None
    pth_would_fire: bool
    pth_note: str
    auto_activates: bool | None  # None: not checked
    auto_targets: list[str] = field(default_factory=list)
    #: Whether a Ray actor started from here (as a Tune trial is) gets the fix; None: unchecked.
    actor_gets_fix: bool | None = None
    active_here: bool = False
    wrapped_here: list[str] = field(default_factory=list)
    #: Required RLlib attributes this Ray lacks (the shim then patches nothing).
    missing_here: list[str] = field(default_factory=list)
    #: E.g. that this Ray's default config is the new API stack, which the shim leaves alone.
    notice: str = ""
    verdict: str = ""
    #: 0: the fix is in effect here; 1: it is not; 2: doctor itself failed.
    exit_code: int = 1


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _probe_auto_activation() -> tuple[bool | None, list[str], list[str]]:
    flags = ["-S"] if sys.flags.no_site else []
    try:
        done = subprocess.run(
            [sys.executable, *flags, "-c", _PROBE], capture_output=True, text=True, timeout=300
        )
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        return bool(answer["active"]), list(answer["targets"]), list(answer["missing"])
    except Exception:  # noqa: BLE001 - a probe that cannot run says "unknown", not "broken"
        return None, [], []


def _probe_actor() -> bool | None:
    """Start one real Ray actor the way Tune starts a trial (Ray started here if it is not yet,
    through the shim's ``ray.init``) and ask whether the fix is active in it."""
    import ray

    started_here = not ray.is_initialized()
    try:
        if started_here:
            ray.init(log_to_driver=False)  # or joins the cluster `ray start` runs here

        class DoctorProbe:  # defined here, so it travels by value: the actor imports nothing
            def gets_the_fix(self) -> bool:
                import sys

                import ray.rllib  # noqa: F401 - as an Algorithm's trial does

                shim = sys.modules.get("rllib_addpolicy_fix")
                return bool(shim is not None and shim.is_installed())

        actor = ray.remote(num_cpus=0)(DoctorProbe).remote()
        return bool(ray.get(actor.gets_the_fix.remote(), timeout=300))
    except Exception:  # noqa: BLE001 - a probe that cannot run says "unknown", not "broken"
        return None
    finally:
        if started_here:
            ray.shutdown()


def diagnose(*, probe: bool = True) -> Diagnosis:
    ray_version = _compat.installed_ray_version()
    pth_path, pth_would_fire, pth_note = find_pth()
    auto, auto_targets, auto_missing = (
        _probe_auto_activation() if probe and ray_version else (None, [], [])
    )
    if ray_version is not None and _install.is_installed():
        import ray.rllib.algorithms.algorithm  # noqa: F401 - lets the hooks wrap their targets
    actor_gets_fix = (
        _probe_actor()
        if probe and _install.is_installed() and _compat.ray_supported(ray_version)
        else None
    )
    diagnosis = Diagnosis(
        python=sys.version.split()[0],
        executable=sys.executable,
        ray=str(ray_version) if ray_version else None,
        ray_supported=_compat.ray_supported(ray_version),
        supported_range=str(_compat.SUPPORTED_RAY),
        tested_releases=list(releases.TESTED_RAY),
        torch=_version("torch"),
        env_var=_settings.switch(),
        env_disables=_settings.disabled_by_environment(),
        pth_path=pth_path,
        pth_would_fire=pth_would_fire,
        pth_note=pth_note,
        auto_activates=auto,
        auto_targets=auto_targets,
        actor_gets_fix=actor_gets_fix,
        active_here=_install.is_installed(),
        wrapped_here=_install.wrapped_targets(),
        missing_here=sorted(set(_install.missing_targets()) | set(auto_missing)),
    )
    if ray_version is not None and _compat.new_stack_is_default(ray_version):
        diagnosis.notice = (
            f"Ray {ray_version}'s default config is RLlib's new API stack, which the shim leaves "
            "alone; opt in to the legacy stack it fixes with `config.api_stack("
            "enable_rl_module_and_learner=False, enable_env_runner_and_connector_v2=False)`."
        )
    diagnosis.verdict = _verdict(diagnosis)
    diagnosis.exit_code = 0 if diagnosis.verdict.startswith("OK") else 1
    return diagnosis


def _verdict(d: Diagnosis) -> str:
    if d.ray is None:
        return "NOT IN EFFECT: Ray is not installed in this environment."
    if d.env_disables:
        return f"OFF: {_settings.ENV_VAR}={d.env_var} disables the shim; RLlib runs unpatched."
    if not d.ray_supported:
        return (
            f"OFF: Ray {d.ray} is outside the supported range {d.supported_range}; "
            "RLlib runs unpatched."
        )
    if d.missing_here:
        return (
            f"OFF: this RLlib lacks {', '.join(d.missing_here)}, which the fix needs; it "
            "patches nothing. Please report this Ray release."
        )
    if d.actor_gets_fix is False:
        return (
            "PARTLY: the fix works in this process, but a Ray actor started from here (a Tune "
            "trial, ray.remote(PPO)) runs without it: install rllib-addpolicy-fix where Ray's "
            "workers run, or use a Ray release with worker setup hooks (see README, Ray Tune "
            "and actors)."
        )
    if d.auto_activates:
        return "OK: scripts in this environment get the fix without an import line."
    if d.active_here:
        return (
            "PARTLY: the fix works where `import rllib_addpolicy_fix` runs, but does not "
            f"activate by itself ({d.pth_note})."
        )
    return "NOT ACTIVE: see the lines above."


def render(d: Diagnosis) -> str:
    def yes(flag: bool | None) -> str:
        return {True: "yes", False: "no", None: "not checked"}[flag]

    lines = [
        f"rllib-addpolicy-fix {_version('rllib-addpolicy-fix') or '(not installed)'} doctor",
        f"  python:              {d.python} ({d.executable})",
        f"  ray:                 {d.ray or 'not installed'} "
        f"({'supported' if d.ray_supported else 'NOT supported'}; range {d.supported_range}; "
        f"{'tested in CI' if d.ray in d.tested_releases else 'not one of the releases CI tests'})",
        f"  torch:               {d.torch or 'not installed'}",
        f"  {_settings.ENV_VAR}: {d.env_var if d.env_var is not None else 'unset'} "
        f"({'disables the shim' if d.env_disables else 'shim enabled'})",
        f"  .pth start-up hook:  {d.pth_path or 'not found'}",
        f"    runs here:         {yes(d.pth_would_fire)} ({d.pth_note})",
        f"  auto-activation:     {yes(d.auto_activates)} (a fresh interpreter that imports RLlib)",
        f"  Ray actor from here: {yes(d.actor_gets_fix)} (as a Tune trial hosts an Algorithm)",
        f"  active here:         {yes(d.active_here)}; {len(d.wrapped_here)} targets wrapped",
        *[f"    {name}" for name in d.wrapped_here],
        *[f"  MISSING in this RLlib: {name}" for name in d.missing_here],
        *([f"notice: {d.notice}"] if d.notice else []),
        f"verdict: {d.verdict}",
    ]
    return "\n".join(lines)


def main(as_json: bool) -> int:
    """Exit 0 when the fix is in effect here, 1 when it is not, 2 when doctor itself failed."""
    try:
        diagnosis = diagnose()
    except Exception as error:  # noqa: BLE001 - a CI script gets an exit code, not a traceback
        message = f"rllib_addpolicy_fix doctor failed: {error!r}"
        print(json.dumps({"error": message, "exit_code": 2}) if as_json else message)
        return 2
    print(json.dumps(asdict(diagnosis)) if as_json else render(diagnosis))
    return diagnosis.exit_code
