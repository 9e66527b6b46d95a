"""The package store's routes (`/libraries`, docs/api.md "Libraries (package store)").

A package is addressed by name and version: `/libraries/lodash/4.17.21`, and a scoped one
`/libraries/@scope/name/1.0.0` (its name's `/` is the path's own; `%40scope%2Fname` as one
encoded segment reaches the same route, since the path is matched decoded).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from supervisor import SupervisorApi
from supervisor.adapters.http import json as out
from supervisor.adapters.http import models as m
from supervisor.errors import PackageNotFound
from supervisor.packages import StoredPackage, check_package_name, check_version, package_id


def package(p: StoredPackage, detail: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"id": p.id, "name": p.name, "version": p.version, "integrity": p.integrity,
                            "tarball": p.tarball_url, "dependencies": p.dependencies, "files": p.file_count,
                            "unpacked_size": p.unpacked_size, "added_at": out.record(p.added_at)}
    if detail:
        body["manifest"] = p.manifest
        body["paths"] = p.tree.paths()
    return body


def _checked(name: str, version: str) -> tuple[str, str]:
    return check_package_name(name), check_version(version)


def add_package_routes(app: FastAPI, sup: SupervisorApi, prefix: str, errors: dict[int | str, Any],
                       registry_errors: dict[int | str, Any]) -> None:
    base = f"{prefix}/libraries"
    lib = sup.packages

    @app.post(base, status_code=201, response_model=list[m.PackageOut], responses=registry_errors,
              tags=["libraries"])
    def add_library(body: m.LibraryAdd) -> Any:
        return out.JSONBody([package(p) for p in lib.add(body.name, body.with_deps)], status_code=201)

    @app.get(base, response_model=list[m.PackageOut], tags=["libraries"])
    def list_libraries() -> Any:
        return out.JSONBody([package(p) for p in lib.list()])

    @app.post(f"{base}/verify", response_model=m.VerifyOut, tags=["libraries"])
    def verify_libraries() -> Any:
        return out.JSONBody(out.record(lib.verify()))

    def get(name: str, version: str) -> Any:
        name, version = _checked(name, version)
        found = lib.get(name, version)
        if found is None:
            raise PackageNotFound(f"{package_id(name, version)} is not in the package store",
                                  package=package_id(name, version))
        return out.JSONBody(package(found, detail=True))

    def delete(name: str, version: str) -> Any:
        name, version = _checked(name, version)
        if not lib.remove(name, version):
            raise PackageNotFound(f"{package_id(name, version)} is not in the package store",
                                  package=package_id(name, version))
        return out.JSONBody({"id": package_id(name, version), "deleted": True})

    @app.get(f"{base}/{{name}}/{{version}}", response_model=m.PackageDetailOut, responses=errors,
             tags=["libraries"])
    def get_library(name: str, version: str) -> Any:
        return get(name, version)

    @app.get(f"{base}/@{{scope}}/{{name}}/{{version}}", response_model=m.PackageDetailOut, responses=errors,
             tags=["libraries"])
    def get_scoped_library(scope: str, name: str, version: str) -> Any:
        return get(f"@{scope}/{name}", version)

    @app.delete(f"{base}/{{name}}/{{version}}", response_model=m.DeletedOut, responses=errors,
                tags=["libraries"])
    def remove_library(name: str, version: str) -> Any:
        return delete(name, version)

    @app.delete(f"{base}/@{{scope}}/{{name}}/{{version}}", response_model=m.DeletedOut, responses=errors,
                tags=["libraries"])
    def remove_scoped_library(scope: str, name: str, version: str) -> Any:
        return delete(f"@{scope}/{name}", version)
