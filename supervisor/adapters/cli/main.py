"""The `vm-system` command line (the `vm-system` script's entry point). Each command group lives
in its own module; this one parses and dispatches, and turns every failure into one readable
line and an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from supervisor.adapters.cli import bench, executions, exit_codes, libs, ops, run, serve, sessions, templates
from supervisor.adapters.cli.common import UsageError, error_line
from supervisor.adapters.client import ClientError, DaemonUnreachable
from supervisor.adapters.http.server import ServeError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints the whole usage and `PROG SUBCOMMAND: error:`; one line with the
        # prefix of every other error is easier to read and to test.
        self.exit(exit_codes.USAGE, error_line(f"{message} (see '{self.prog} --help')") + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vm-system",
        description="Run untrusted JavaScript safely: QuickJS in WebAssembly, with CPU, "
                    "wall-clock, memory, output and event limits enforced while it runs.",
        epilog=exit_codes.SUMMARY,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    run.add_parser(sub)
    serve.add_parser(sub)
    # The daemon's client side: each group talks to `vm-system serve` over the REST API.
    templates.add_parser(sub)
    libs.add_parser(sub)
    sessions.add_parser(sub)
    executions.add_parser(sub)
    ops.add_parser(sub)
    bench.add_parser(sub)
    return parser


def _quiet_logging() -> None:
    from supervisor.logs import configure_logging

    configure_logging(level="warning")  # commands that log more (serve) reconfigure


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # structlog costs ~90 ms to import: `--help`, argument errors and a one-shot `run` (whose
    # engine logs only when something goes wrong) configure it only if a log line is due.
    if args.command == "run":
        from sandbox import before_first_log

        before_first_log(_quiet_logging)
    else:
        _quiet_logging()
    try:
        return int(args.handler(args))
    except (UsageError, ServeError) as exc:
        sys.stderr.write(error_line(str(exc)) + "\n")
        return exit_codes.USAGE
    except ClientError as exc:
        # An API error envelope, or no daemon at the address: one line, no traceback.
        sys.stderr.write(error_line(exc.one_line()) + "\n")
        return exit_codes.NO_DAEMON if isinstance(exc, DaemonUnreachable) else exit_codes.SCRIPT_ERROR
    except BrokenPipeError:
        # The reader went away (`| head`): not our error.
        sys.stderr.close()
        return exit_codes.OK
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
