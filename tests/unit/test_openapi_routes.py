"""Every REST route the app registers is described in /openapi.json (and nothing extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptowire.app.node import Node
from cryptowire.server.app import create_app
from cryptowire.server.openapi import document
from cryptowire.settings import ECONIA_CHANNELS, load_settings

# WebSocket upgrades, the dashboard's files and the docs themselves are not REST operations.
NOT_REST_PREFIXES = ("/ws", "/rfq", "/swaps", "/pg/", "/static/", "/echo")
NOT_REST = {"/", "/favicon.ico", "/openapi.json", "/docs"}
MIRRORS = {f"/{c}s" for c in ECONIA_CHANNELS}  # seed 002 mirrors, documented in postgres.md
DOCUMENTED_WS_REST = {"/ws/stats", "/ws/services", "/ws/endpoints"}


def test_every_rest_route_is_documented(tmp_path: Path) -> None:
    config = tmp_path / "cryptowire.toml"
    config.touch()
    settings = load_settings(config, store={"url": f"sqlite+aiosqlite:///{tmp_path}/o.db"},
                             pgnotify={"mirror": True})
    app = create_app(Node(settings))
    registered: set[tuple[str, str]] = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        method = route.method.lower()
        if method == "head" or path in NOT_REST or path in MIRRORS:
            continue
        if path.startswith(NOT_REST_PREFIXES) and path not in DOCUMENTED_WS_REST:
            continue
        registered.add((method, path))
    documented = {(m, p) for p, ops in document()["paths"].items() for m in ops}
    assert registered - documented == set(), "routes missing from openapi.py"
    assert documented - registered == set(), "openapi.py describes routes that do not exist"


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,),
    "number": (int, float), "boolean": (bool,), "null": (type(None),),
}


def _check(value: Any, schema: dict[str, Any], schemas: dict[str, Any], where: str) -> None:
    """A small structural check of an example against its schema (type, enum/const,
    required, no undeclared properties, items, oneOf, $ref)."""
    if "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
    if "oneOf" in schema:
        errors = []
        for option in schema["oneOf"]:
            try:
                _check(value, option, schemas, where)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{where}: no oneOf matches: {errors}")
    if "const" in schema:
        assert value == schema["const"], where
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        ok = any(isinstance(value, _TYPES[n]) and not (n in ("integer", "number")
                                                        and isinstance(value, bool))
                 for n in names)
        assert ok, f"{where}: {value!r} is not {names}"
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        assert set(schema.get("required", [])) <= set(value), f"{where}: missing required"
        for name, item in value.items():
            if name in props:
                _check(item, props[name], schemas, f"{where}.{name}")
            else:
                assert schema.get("additionalProperties") is True, f"{where}: unknown {name}"
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for name, item in value.items():
            _check(item, schema["additionalProperties"], schemas, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], schemas, f"{where}[{i}]")


def test_every_operation_has_schemas_and_examples_that_match() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op["summary"] and op["responses"], where
            bodies = [(f"{where} request", op["requestBody"]["content"])] \
                if "requestBody" in op else []
            bodies += [(f"{where} {status}", resp["content"])
                       for status, resp in op["responses"].items()]
            assert any(s.startswith("2") for s in op["responses"]), where
            for label, content in bodies:
                for media in content.values():
                    assert "schema" in media and "example" in media, label
                    _check(media["example"], media["schema"], schemas, label)
            for param in op.get("parameters", []):
                assert "schema" in param and "example" in param, f"{where} {param['name']}"
