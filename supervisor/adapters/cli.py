"""The `vm-system` command line. Each command lives in its own module; this one parses and
dispatches, and turns every failure into one readable line and an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from supervisor.adapters import daemon, exit_codes, run_command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints the whole usage; one line is easier to read and to test.
        self.exit(exit_codes.USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vm-system",
        description="Run untrusted JavaScript safely: QuickJS in WebAssembly, with CPU, "
                    "wall-clock, memory, output and event limits enforced while it runs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    run_command.add_parser(sub)
    daemon.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from supervisor.logs import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging(level="warning")  # commands that log more (serve) reconfigure
    try:
        return int(args.handler(args))
    except (run_command.UsageError, daemon.ServeError) as exc:
        sys.stderr.write(f"vm-system: error: {exc}\n")
        return exit_codes.USAGE
    except BrokenPipeError:
        # The reader went away (`| head`): not our error.
        sys.stderr.close()
        return exit_codes.OK
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
