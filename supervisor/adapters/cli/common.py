"""What the commands share: the error line and usage errors, the connection options and
building a client, a command that talks to the daemon, and arguments (JSON objects, code, a
template's id or name). Where they print is output.py; a script's outcome, outcome.py.

Nothing heavy at import time: httpx is imported when a command runs, never for
`vm-system --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from supervisor.adapters.cli import exit_codes
from supervisor.adapters.cli.output import Output

# Every error line the CLI writes starts with this, whatever the command and whatever failed
# (arguments, input, the daemon's answer, no daemon at all).
ERROR_PREFIX = "vm-system: error: "
URL_ENV = "VM_SYSTEM_URL"
TOKEN_ENV = "VM_SYSTEM_TOKEN"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

Handler = Callable[[Any, argparse.Namespace, Output], int]


class UsageError(Exception):
    """Bad input: one readable line, exit code 2, nothing ran."""


def error_line(message: str) -> str:
    return ERROR_PREFIX + message


def add_common_options(parser: argparse.ArgumentParser) -> None:
    from supervisor.adapters.client import DEFAULT_URL

    group = parser.add_argument_group("daemon connection")
    group.add_argument("--server-url", metavar="URL", default=None,
                       help=f"the daemon's address (default: ${URL_ENV}, else {DEFAULT_URL})")
    group.add_argument("--token", metavar="TOKEN", default=None,
                       help=f"bearer token of a daemon started with one (default: ${TOKEN_ENV})")
    group.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                       help="give up waiting for an answer after this long (default: 30 s, "
                            "600 s for requests that run JavaScript)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of text")


def command(subparsers: Any, name: str, handler: Handler, help: str,
            description: str | None = None, epilog: str | None = None) -> argparse.ArgumentParser:
    """A leaf command that talks to the daemon: the common options, and a handler run with a
    connected client and an output."""
    p = subparsers.add_parser(name, help=help, description=description or help[:1].upper() + help[1:] + ".",
                              epilog=f"{epilog}\n\n{exit_codes.SUMMARY}" if epilog else exit_codes.SUMMARY,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(p)
    p.set_defaults(handler=lambda args: run_handler(handler, args))
    return p


def group(subparsers: Any, name: str, help: str, description: str) -> Any:
    p = subparsers.add_parser(name, help=help, description=description)
    sub = p.add_subparsers(dest=f"{name}_command", metavar="COMMAND",
                           parser_class=type(p))
    sub.required = True
    return sub


def make_client(args: argparse.Namespace) -> Any:
    from supervisor.adapters.client import DEFAULT_URL, Client

    url = args.server_url or os.environ.get(URL_ENV) or DEFAULT_URL
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    try:
        return Client(url, token=token or None, timeout=args.timeout)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def run_handler(handler: Handler, args: argparse.Namespace) -> int:
    out = Output(as_json=args.json)
    api = make_client(args)
    try:
        return int(handler(api, args, out))
    finally:
        api.close()


# ----- arguments ---------------------------------------------------------------------------


def json_object(text: str, flag: str) -> dict[str, Any]:
    """A JSON object given on the command line (`@FILE` reads it from a file, `-` from stdin)."""
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise UsageError(f"{flag}: cannot read {text[1:]}: {exc.strerror or exc}") from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{flag}: expected a JSON object like '{{\"key\": 1}}'")
    return value


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def resolve_template(api: Any, ref: str) -> str:
    """A template's id from its id or its (unique) name."""
    if is_uuid(ref):
        return ref
    from supervisor.adapters.client import ApiError

    for template in api.list_templates():
        if template.get("name") == ref:
            return str(template["id"])
    raise ApiError("TEMPLATE_NOT_FOUND", f"no template with the id or name {ref!r}", status=404)


def read_code(code: str) -> str:
    if code == "-":
        code = sys.stdin.read()
    if not code.strip():
        raise UsageError("the code is empty")
    return code
