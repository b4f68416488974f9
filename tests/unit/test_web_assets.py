"""The dashboard's files, and the vendored libraries, are in the package (package-data) and
listed with their versions in web/vendor/README.md."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from importlib import resources
from pathlib import Path

from cryptowire.server.web import ASSETS, VENDOR

ROOT = Path(__file__).resolve().parents[2]


def test_every_served_file_exists_and_is_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["cryptowire"]
    web = resources.files("cryptowire") / "web"
    names = list(ASSETS) + [f"vendor/{name}" for name in VENDOR]
    for name in names:
        assert (web / name).is_file(), name
        assert any(fnmatch.fnmatch(f"web/{name}", g) and g.count("/") == name.count("/") + 1
                   for g in globs), f"web/{name} is not package data"


def test_vendored_versions_are_pinned_and_listed() -> None:
    pins = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    readme = (ROOT / "src/cryptowire/web/vendor/README.md").read_text()
    for package in ("lightweight-charts", "swagger-ui-dist"):
        version = pins[package]
        assert version[0].isdigit(), f"{package} is not pinned exactly: {version}"
        assert f"`{package}`" in readme and f"| {version} |" in readme, package
    for name in VENDOR:
        assert f"`{name}`" in readme, name
    bundle = (ROOT / "src/cryptowire/web/vendor" /
              "lightweight-charts.standalone.production.js").read_text()
    assert f"Lightweight Charts™ v{pins['lightweight-charts']}" in bundle
