"""`vm-system libs ...`: the daemon's npm package store (docs/api.md, "Libraries (package store)")."""

from __future__ import annotations

import argparse
from typing import Any

from supervisor.adapters.cli import exit_codes
from supervisor.adapters.cli.common import UsageError, command, error_line, group
from supervisor.adapters.cli.output import Output, when

SPEC_HELP = ("a package: NAME@VERSION, @SCOPE/NAME@VERSION, or the Go catalog's NAME-VERSION "
             "(lodash-4.17.21)")


def add_parser(subparsers: Any) -> None:
    sub = group(subparsers, "libs", help="the daemon's npm package store (through the daemon)",
                description="npm packages the daemon keeps for templates' libraries: fetched from "
                            "the registry it was started with (serve --registry), checked against "
                            "their sha512 integrity, unpacked safely and stored content-addressed "
                            "in its data directory. Only `add` reaches the registry.")
    p = command(sub, "add", _add, help="fetch a package from the registry and store it",
                description="Fetch a package from the registry and store it. Without a version, "
                            "the registry's latest. A package already stored is not fetched again.")
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP + "; the version may be left out")
    p.add_argument("--with-deps", action="store_true",
                   help="also fetch its dependencies (package.json dependencies, the whole closure)")
    command(sub, "list", _list, help="list the stored packages")
    p = command(sub, "remove", _remove,
                help="remove a stored package (and the files no other package holds)")
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    command(sub, "verify", _verify,
            help="re-hash every stored file; exit 1 when one is missing or damaged")


def _split(spec: str) -> tuple[str, str]:
    from supervisor.errors import ValidationError
    from supervisor.packages.names import parse_spec

    try:
        parsed = parse_spec(spec)
    except ValidationError as exc:
        raise UsageError(exc.message) from exc
    if parsed.version is None:
        raise UsageError(f"{spec!r}: give the version to remove (NAME@VERSION)")
    return parsed.name, parsed.version


def _table(out: Output, packages: list[dict[str, Any]]) -> None:
    out.table(["PACKAGE", "FILES", "BYTES", "DEPENDENCIES", "ADDED"],
              [[p.get("id"), p.get("files"), p.get("unpacked_size"), len(p.get("dependencies") or {}),
                when(p.get("added_at"))] for p in packages], empty="no packages")


def _add(api: Any, args: argparse.Namespace, out: Output) -> int:
    packages = api.add_package(args.spec, with_deps=args.with_deps)

    def show() -> None:
        for p in packages:
            out.line(f"stored {p.get('id')} ({p.get('files')} files, {p.get('integrity', '')[:19]}…)")
    return out.result(packages, show)


def _list(api: Any, args: argparse.Namespace, out: Output) -> int:
    packages = api.list_packages()
    return out.result(packages, lambda: _table(out, packages))


def _remove(api: Any, args: argparse.Namespace, out: Output) -> int:
    name, version = _split(args.spec)
    result = api.remove_package(name, version)
    return out.result(result, lambda: out.line(f"removed {result.get('id')}"))


def _verify(api: Any, args: argparse.Namespace, out: Output) -> int:
    report = api.verify_packages()
    damaged = report.get("damaged") or []
    if out.as_json:
        out.json(report)
    elif damaged:
        out.table(["PACKAGE", "PATH", "PROBLEM", "SHA256"],
                  [[d.get("package"), d.get("path"), d.get("problem"), d.get("sha256")] for d in damaged])
    else:
        out.line(f"ok: {report.get('files')} files of {report.get('packages')} packages verified", "green")
    if damaged:
        out.err.write(error_line(f"{len(damaged)} stored files are missing or damaged; `libs remove` and "
                                 "`libs add` store a package again") + "\n")
        return exit_codes.SCRIPT_ERROR
    return exit_codes.OK
