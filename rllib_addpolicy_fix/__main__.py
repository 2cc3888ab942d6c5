"""``python -m rllib_addpolicy_fix demo | doctor``."""

from __future__ import annotations

import argparse
import sys


def parse(argv: list[str]) -> argparse.Namespace:
    from . import __version__

    parser = argparse.ArgumentParser(prog="python -m rllib_addpolicy_fix")
    parser.add_argument("--version", action="version", version=f"rllib-addpolicy-fix {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="self-play league with the shim off, then on")
    demo.add_argument(
        "--address", default=None, help="an existing Ray cluster (default: start a local instance)"
    )
    demo.add_argument("--workers", type=int, default=2, help="remote rollout workers (2)")
    demo.add_argument("--iterations", type=int, default=8, help="training iterations (8)")
    demo.add_argument(
        "--snapshot-every",
        type=int,
        default=2,
        help="add a snapshot of main every N iterations (2)",
    )
    doctor = commands.add_parser(
        "doctor",
        help="is the fix in effect here, and if not, why (exit 0: in effect, 1: not, 2: error)",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.command == "demo":
        from .tools import demo

        return demo.main(args)
    if args.command == "doctor":
        from .tools import doctor

        return doctor.main(args.json)
    return 2


if __name__ == "__main__":
    sys.exit(main())
