"""What :func:`cryptowire.settings.load_settings` checks before and after pydantic: TOML syntax
as ``file:line:col: what``, unknown names in the file and in ``CRYPTOWIRE_*`` variables (with
the closest valid name), validation errors on one line, and where a relative SQLite store
lives (next to the config file, else in the per-user data directory).

Everything here walks the settings models themselves, so a field or section added later is
checked without touching this module.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from cryptowire.errors import ConfigError

ENV_PREFIX = "CRYPTOWIRE_"
NESTED = "__"
#: ``CRYPTOWIRE_*`` variables that are not settings: ``cryptowire tail``'s key, the tests' own.
NOT_SETTINGS = ("CRYPTOWIRE_API_KEY", "CRYPTOWIRE_ANVIL", "CRYPTOWIRE_TEST_")

_TOML_POSITION = re.compile(r"(?P<what>.*?)\s*\(at line (?P<line>[0-9]+), column (?P<col>[0-9]+)\)")


def data_dir() -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME/cryptowire``, by default
    ``~/.local/share/cryptowire`` (the XDG base directory rule)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "cryptowire"


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file; a syntax error becomes ``ConfigError("file:line:col: what")``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.fullmatch(message)
        if found is None:
            raise ConfigError(f"{path}: {message}") from exc
        raise ConfigError(
            f"{path}:{found['line']}:{found['col']}: {found['what']}") from exc


def _model_of(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """``(model, is_list)`` when a field holds a settings model or a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (Union, types.UnionType):
        for arg in args:
            found = _model_of(arg)
            if found is not None:
                return found
        return None
    if origin is list and args:
        inner = _model_of(args[0])
        if inner is not None and not inner[1]:
            return inner[0], True
    return None


def _suggest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def unknown_field(model: type[BaseModel], data: Any, path: str = "") -> str | None:
    """The first name in ``data`` (parsed TOML) that ``model`` does not have, as
    "unknown setting `server.prot` (did you mean `port`?)"; None when every name is known."""
    if not isinstance(data, Mapping):
        return None
    fields = model.model_fields
    for key, value in data.items():
        if key not in fields:
            return f"unknown setting `{path}{key}`{_suggest(str(key), list(fields))}"
        nested = _model_of(fields[key].annotation)
        if nested is None:
            continue
        sub, many = nested
        if many and isinstance(value, list):
            for i, item in enumerate(value):
                found = unknown_field(sub, item, f"{path}{key}[{i}].")
                if found:
                    return found
        else:
            found = unknown_field(sub, value, f"{path}{key}.")
            if found:
                return found
    return None


def unknown_env(model: type[BaseModel], environ: Mapping[str, str]) -> str | None:
    """The first ``CRYPTOWIRE_*`` variable that names no setting, as a one-line reason.

    ``CRYPTOWIRE_<SECTION>__<FIELD>`` names are checked segment by segment. A name without
    ``__`` is a top-level field; one that is none is left alone (``CRYPTOWIRE_API_KEY`` belongs
    to ``cryptowire tail``) unless it is a near miss: ``CRYPTOWIRE_SERVER_PORT`` (one
    underscore) or a misspelt top-level field."""
    fields = model.model_fields
    sections = [name for name, f in fields.items() if _model_of(f.annotation) is not None]
    for var in sorted(environ):
        if not var.upper().startswith(ENV_PREFIX) or var.upper().startswith(NOT_SETTINGS):
            continue
        rest = var[len(ENV_PREFIX):].lower()
        if NESTED not in rest:
            if rest in fields:
                continue
            for section in sections:
                if rest.startswith(section + "_"):
                    field = rest[len(section) + 1:].upper()
                    right = f"{ENV_PREFIX}{section.upper()}{NESTED}{field}"
                    return (f"{var}: unknown setting (nested settings take a double "
                            f"underscore: `{right}`)")
            close = difflib.get_close_matches(rest, list(fields), n=1, cutoff=0.8)
            if close:
                return f"{var}: unknown setting (did you mean `{ENV_PREFIX}{close[0].upper()}`?)"
            continue
        current: type[BaseModel] | None = model
        path = ""
        for segment in rest.split(NESTED):
            if current is None:  # past a plain field (a dict's keys, JSON): not checked
                break
            names = current.model_fields
            if segment not in names:
                return f"{var}: unknown setting `{path}{segment}`{_suggest(segment, list(names))}"
            nested = _model_of(names[segment].annotation)
            current = nested[0] if nested is not None and not nested[1] else None
            path += segment + "."
    return None


def one_line(exc: ValidationError) -> str:
    """A pydantic error as one line: ``server.port: Input should be a valid integer; ...``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            parts.append(f"unknown setting `{where}`")
        else:
            parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "invalid settings: " + "; ".join(parts)


def resolve_sqlite(url: str, base: Path) -> str:
    """``url`` with a relative SQLite file path made absolute against ``base``
    (``sqlite+aiosqlite:///./cryptowire.db`` -> ``sqlite+aiosqlite:////base/cryptowire.db``);
    absolute paths, ``:memory:`` and other databases unchanged."""
    scheme, sep, rest = url.partition(":///")
    if not sep or not scheme.startswith("sqlite"):
        return url
    file, qmark, query = rest.partition("?")
    if not file or file.startswith("/") or file == ":memory:" or file.startswith("file:"):
        return url
    return f"{scheme}:///{(base / file).resolve()}{qmark}{query}"
