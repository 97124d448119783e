"""The compose deployment: everything docker-compose.yml names exists, validates and runs.

No Docker engine is needed: `docker-compose config` validates the file, and the rest is
checked against the repository and the real config loader and CLI.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from gridsense.config import GridsenseConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
MOSQUITTO_CONF_TARGET = "/mosquitto/config/mosquitto.conf"
DEFAULT_QUEUE = 1000


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict) and doc.get("services"), "docker-compose.yml has no services"
    return doc


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _gridsense_commands(compose: dict[str, Any]) -> dict[str, list[str]]:
    """Service name -> argv after `gridsense`, for every service running the CLI."""
    commands = {}
    for name, service in _services(compose).items():
        argv = _argv(service)
        if argv[:1] == ["gridsense"]:
            commands[name] = argv[1:]
    return commands


def _binds(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of each bind mount (named volumes left out)."""
    binds = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                binds[volume["target"]] = ROOT / volume["source"]
            continue
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/", "~")):
            binds[target] = ROOT / source
    return binds


def _volume_targets(service: dict[str, Any]) -> list[PurePosixPath]:
    targets = []
    for volume in service.get("volumes", []):
        target = volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
        targets.append(PurePosixPath(target))
    return targets


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _mounted_configs(compose: dict[str, Any]) -> dict[str, tuple[Path, GridsenseConfig]]:
    """Service name -> (host file, loaded config) for every service given `--config`."""
    configs = {}
    for name, argv in _gridsense_commands(compose).items():
        target = _option(argv, "--config")
        if target is None:
            continue
        binds = _binds(_services(compose)[name])
        assert target in binds, f"{name}: --config {target} is not a bind mount of the service"
        configs[name] = (binds[target], load_config(binds[target]))
    return configs


def _dockerfile_copies() -> list[list[str]]:
    """Source paths of each COPY instruction in the Dockerfile that copies from the build
    context (flags left out; ``COPY --from=<stage>`` takes another stage's files)."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    copies = []
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if len(words) < 2 or words[0].upper() != "COPY":
            continue
        args = json.loads(words[1]) if words[1].startswith("[") else shlex.split(words[1])
        if any(a.startswith("--from=") for a in args):
            continue
        copies.append([a for a in args if not a.startswith("--")][:-1])
    return copies


def test_docker_compose_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not on PATH. Install it (Debian/Ubuntu: "
            "`apt-get install docker-compose`, or `pip install docker-compose`); this test "
            "runs the real binary's `config` command and needs no Docker engine."
        )
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"


def test_every_file_the_compose_file_names_exists(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        for target, source in _binds(service).items():
            assert source.exists(), f"{name}: bind mount source {source} (-> {target}) is missing"
        build = service.get("build")
        if build is None:
            continue
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        assert context.is_dir(), f"{name}: build context {context} is missing"
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (context / dockerfile).is_file(), f"{name}: {context / dockerfile} is missing"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in _services(compose).items():
        for volume in service.get("volumes", []):
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name}: volume {source} is not declared"


def test_every_gridsense_command_is_a_real_subcommand(compose: dict[str, Any]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    module, func = scripts["scripts"]["gridsense"].split(":")
    # The console script's own entry point, the one the image installs as `gridsense`.
    entry = (
        f"import sys; from {module} import {func}; "
        f"sys.argv = ['gridsense', *sys.argv[1:]]; sys.exit({func}())"
    )
    commands = _gridsense_commands(compose)
    assert commands, "no service runs `gridsense ...`"
    for name, argv in commands.items():
        words = []
        for arg in argv:
            if arg.startswith("-"):
                break
            words.append(arg)
        result = subprocess.run(
            [sys.executable, "-c", entry, *words, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (
            f"{name}: `gridsense {' '.join(words)} --help` exited {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )


def test_mosquitto_queues_far_more_than_the_default(compose: dict[str, Any]) -> None:
    brokers = [s for s in _services(compose).values() if "mosquitto" in s.get("image", "")]
    assert len(brokers) == 1, "expected one mosquitto service"
    binds = _binds(brokers[0])
    assert MOSQUITTO_CONF_TARGET in binds, f"mosquitto.conf is not mounted at {MOSQUITTO_CONF_TARGET}"
    settings = {}
    for line in binds[MOSQUITTO_CONF_TARGET].read_text(encoding="utf-8").splitlines():
        words = line.split(None, 1)
        if len(words) == 2 and not words[0].startswith("#"):
            settings[words[0]] = words[1].strip()
    # Beyond max_queued_messages Mosquitto silently drops QoS 1 messages for the pipeline.
    assert int(settings.get("max_queued_messages", DEFAULT_QUEUE)) > DEFAULT_QUEUE
    # Without persistence the pipeline's queued session is lost when the broker restarts.
    assert settings.get("persistence") == "true"


def test_mounted_config_validates_and_points_at_compose_services(compose: dict[str, Any]) -> None:
    configs = _mounted_configs(compose)
    assert "pipeline" in configs, "the pipeline service is not given --config"
    services = _services(compose)
    for name, (path, cfg) in configs.items():
        assert cfg.mqtt.host in services, f"{path}: mqtt.host {cfg.mqtt.host} is no compose service"
        for url in (cfg.bridge.url, getattr(cfg.sink, "url", None)):
            if url is not None:
                host = urlparse(url).hostname
                assert host in services, f"{path}: {url} names no compose service ({name})"


def test_pipeline_store_and_influx_credentials_match_the_services(compose: dict[str, Any]) -> None:
    services = _services(compose)
    path, cfg = _mounted_configs(compose)["pipeline"]
    # The store must sit on a volume, or incidents and the case outbox die with the container.
    targets = _volume_targets(services["pipeline"])
    store = PurePosixPath(cfg.store.path)
    assert any(t in store.parents for t in targets), f"{path}: store {store} is on no volume"
    if cfg.sink.type == "influxdb":
        host = urlparse(cfg.sink.url).hostname
        env = services[host]["environment"]
        assert cfg.sink.org == env["DOCKER_INFLUXDB_INIT_ORG"]
        assert cfg.sink.bucket == env["DOCKER_INFLUXDB_INIT_BUCKET"]
        assert cfg.sink.token.get_secret_value() == env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]


def test_dockerfile_copies_every_package_and_only_files_that_exist() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*").rstrip(".") for pattern in include}
    sources = [src for copy in _dockerfile_copies() for src in copy]
    copied = {PurePosixPath(src).as_posix() for src in sources}
    assert packages <= copied, f"Dockerfile does not COPY {sorted(packages - copied)}"
    build_inputs = {"pyproject.toml", "setup.py", "README.md"}  # what `pip wheel .` reads
    assert build_inputs <= copied, f"Dockerfile does not COPY {sorted(build_inputs - copied)}"
    ignored = [
        line.strip().strip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    for src in sources:
        assert (ROOT / src).exists(), f"Dockerfile COPYs {src}, which is not in the repository"
        hit = [p for p in ignored if fnmatch.fnmatch(PurePosixPath(src).as_posix(), p)]
        assert not hit, f"Dockerfile COPYs {src}, but .dockerignore excludes it ({hit})"
