"""schemas/ops.openapi.yaml and the ops app (`hub.ops.api.create_app`) name the same
endpoints, each with the answers its guard can give; every reference resolves.
The dashboard's HTML pages are not API and are not described.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from hub.ops.api import create_app
from hub.ops.context import Ops
from hub.settings import Settings
from hub.tenancy import parse
from tests.fixtures_tenancy import ENV, TENANCY_TOML

DOCUMENT = Path(__file__).parents[2] / "schemas" / "ops.openapi.yaml"
METHODS = {"get", "post", "put", "patch", "delete"}
OPEN = {"/healthz", "/metrics"}
CHANGING = {"/api/dead/replay", "/api/dead/purge", "/api/gaps/{id}/redeliver"}


def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    return loaded


def served() -> set[tuple[str, str]]:
    settings = Settings()
    # create_app only keeps the Ops it is given: nothing is opened, so no pool is needed.
    ops = Ops(settings, parse(tomllib.loads(TENANCY_TOML), ENV), None)  # type: ignore[arg-type]
    app = create_app(ops, settings)
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        and (route.resource.canonical.startswith("/api/") or route.resource.canonical in OPEN)
    }


def documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in spec()["paths"].items()
        for method in item
        if method in METHODS
    }


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec()["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def test_every_route_is_documented_and_every_documented_path_is_served() -> None:
    assert served() == documented()
    assert len(served()) == 13


def test_every_operation_answers_what_its_guard_can() -> None:
    document = spec()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert {"bearer": []} in document["security"]
    for method, path, operation in operations():
        answers = set(operation["responses"])
        if path in OPEN:
            assert operation["security"] == [], path
            continue
        assert "security" not in operation, path  # the document's: a token
        assert "401" in answers, (method, path)
        assert "503" in answers, (method, path)
        changes = method == "post"
        assert ("403" in answers) is changes, (method, path)
        if changes:
            assert {"400", "415"} <= answers, (method, path)
        if path in CHANGING:
            assert "operator token" in operation["summary"], path


def test_path_parameters_are_declared_and_references_resolve() -> None:
    document = spec()
    for method, path, operation in operations():
        named = {
            _resolve(document, p).get("name")
            for p in operation.get("parameters", [])
            if _resolve(document, p).get("in") == "path"
        }
        wanted = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        assert named == wanted, (method, path)
    for ref in _refs(document):
        assert _resolve(document, {"$ref": ref}), ref


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    found: Any = document
    for part in node["$ref"].removeprefix("#/").split("/"):
        found = found[part]
    assert isinstance(found, dict)
    return found


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
