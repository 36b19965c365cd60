"""docker-compose.yml and the Dockerfile, checked without Docker.

Why: the compose file is only exercised on machines with Docker, so its mistakes (a missing mounted
file, a drifting env var name, an unpinned image, a command riskmon does not have) would surface late.
These checks read the same files Docker would and hold them against the code.
"""

from __future__ import annotations

import base64
import re
import shlex
import tomllib
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from riskmon.cli.main import build_parser
from riskmon.config import REPO_ROOT, Settings

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
RISKMON_SERVICES = ("worker", "sink", "simulator", "dashboards")
GENERATED_PREFIX = "./var/"  # gitignored; created by docker and filled by a one-shot service


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def interpolate(value: str) -> str:
    """Compose variable substitution with every variable unset: ``${X:-d}`` -> d, ``$$`` -> ``$``."""
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)
    return value.replace("$$", "$")


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of the bind mounts (named volumes are skipped)."""
    out = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            if vol.get("type") == "bind":
                out.append((vol["source"], vol["target"]))
            continue
        src, dst = vol.split(":")[:2]
        if src.startswith((".", "/")):
            out.append((src, dst))
    return out


def test_the_expected_services_exist(compose: dict[str, Any]) -> None:
    assert {"kafka", "redis", "clickhouse", "grafana", "worker", "sink", "simulator"} <= set(compose["services"])


def test_every_image_has_an_explicit_tag(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        image = svc.get("image")
        if image is None:
            assert "build" in svc, f"{name} has neither image nor build"
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag not in ("latest", "") and re.match(r"^\d", tag), f"{name}: image {image!r} is not pinned"
    images = {n: s.get("image", "") for n, s in compose["services"].items()}
    assert images["kafka"].startswith("apache/kafka:4.")
    assert images["redis"].startswith("redis:7.")
    assert images["clickhouse"].startswith("clickhouse/clickhouse-server:")
    assert images["grafana"].startswith("grafana/grafana:12.")


def test_every_referenced_local_path_exists(compose: dict[str, Any]) -> None:
    generated = []
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build is not None:
            context = REPO_ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).is_file(), f"{name}: {context / dockerfile} missing"
        for src, _ in bind_mounts(svc):
            if src.startswith(GENERATED_PREFIX):
                generated.append((name, src))
                continue
            assert (REPO_ROOT / src).exists(), f"{name}: mounted {src} does not exist"
    # Generated paths live under var/ (gitignored) and some one-shot service writes them.
    assert "var/" in (REPO_ROOT / ".gitignore").read_text().split()
    for name, src in generated:
        writers = [n for n, s in compose["services"].items()
                   if s.get("restart") == "no" and any(m[0] == src for m in bind_mounts(s))]
        assert writers, f"{name}: {src} is under var/ but no one-shot service writes it"


def test_grafana_provisioning_matches_the_mounts(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = dict(bind_mounts(grafana))
    provisioning = REPO_ROOT / "dashboards" / "provisioning"
    assert mounts["./dashboards/provisioning"] == "/etc/grafana/provisioning"
    assert (provisioning / "datasources" / "clickhouse.yaml").is_file()
    provider = yaml.safe_load((provisioning / "dashboards" / "riskmon.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == mounts["./var/dashboards"]
    # The dashboards one-shot exports into the same host dir.
    one_shot = compose["services"]["dashboards"]
    target = dict(bind_mounts(one_shot))["./var/dashboards"]
    assert one_shot["command"][:2] == ["dashboards", "export"] and one_shot["command"][2] == target
    # Every ${VAR} in the datasource is set in Grafana's environment; the plugin is installed.
    ds_text = (provisioning / "datasources" / "clickhouse.yaml").read_text()
    env = env_of(grafana)
    for var in set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", ds_text)):
        assert env.get(var), f"datasource needs {var} but grafana's environment lacks it"
    assert "grafana-clickhouse-datasource" in env["GF_INSTALL_PLUGINS"]


def test_clickhouse_readonly_user_matches_grafana(compose: dict[str, Any]) -> None:
    ch = compose["services"]["clickhouse"]
    mounts = dict(bind_mounts(ch))
    xml_path = "./infra/clickhouse/users.d/readonly.xml"
    assert mounts[xml_path].startswith("/etc/clickhouse-server/users.d/")
    root = ET.parse(REPO_ROOT / xml_path).getroot()
    ds = yaml.safe_load((REPO_ROOT / "dashboards/provisioning/datasources/clickhouse.yaml").read_text())
    user_name = ds["datasources"][0]["jsonData"]["username"]
    user = root.find(f"users/{user_name}")
    assert user is not None, f"{xml_path} does not define {user_name}"
    profile = root.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None and profile.findtext("readonly") == "1"
    assert profile.find("constraints/max_execution_time/changeable_in_readonly") is not None
    # The password comes from an env var the ClickHouse container has, the same one Grafana gets.
    pw_var = user.find("password").get("from_env")
    assert env_of(ch).get(pw_var), f"clickhouse container lacks {pw_var}"
    assert env_of(ch)[pw_var] == env_of(compose["services"]["grafana"])[pw_var]
    grants = [q.text for q in user.findall("grants/query")]
    assert grants == [f"GRANT SELECT ON {env_of(ch)['CLICKHOUSE_DB']}.*"]


def test_riskmon_env_vars_are_real_settings_and_parse(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    used = set(re.findall(r"\bRISKMON_[A-Z0-9_]+", text))
    assert used, "compose file sets no RISKMON_* variables"
    fields = {f"RISKMON_{name.upper()}" for name in Settings.model_fields}
    assert used <= fields, f"not Settings fields: {sorted(used - fields)}"
    for name in RISKMON_SERVICES:
        env = {k: v for k, v in env_of(compose["services"][name]).items() if k.startswith("RISKMON_")}
        settings = Settings(**{k.removeprefix("RISKMON_").lower(): v for k, v in env.items()})
        assert settings.broker_url == "kafka://kafka:9092"


def test_riskmon_urls_point_at_the_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = env_of(services["sink"])
    kafka_env = env_of(services["kafka"])
    advertised = dict(reversed(x.split("://", 1)) for x in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert env["RISKMON_BROKER_URL"].removeprefix("kafka://") in advertised
    assert urlsplit(env["RISKMON_REDIS_URL"]).hostname == "redis"
    dsn = urlsplit(env["RISKMON_CLICKHOUSE_DSN"])
    ch_env = env_of(services["clickhouse"])
    assert dsn.hostname == "clickhouse" and dsn.port == 8123
    assert (dsn.username, dsn.password, dsn.path.strip("/")) == (
        ch_env["CLICKHOUSE_USER"], ch_env["CLICKHOUSE_PASSWORD"], ch_env["CLICKHOUSE_DB"])


def test_kafka_is_a_consistent_single_kraft_node(compose: dict[str, Any]) -> None:
    env = env_of(compose["services"]["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    listeners = {x.split("://")[0] for x in env["KAFKA_LISTENERS"].split(",")}
    advertised = {x.split("://")[0] for x in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    protocols = dict(x.split(":") for x in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert advertised <= listeners <= set(protocols)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners - advertised
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    cid = env["CLUSTER_ID"].split()[0]
    assert len(base64.urlsafe_b64decode(cid + "==")) == 16 and not cid.startswith("-")
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env[key] == "1"


def test_workers_can_scale(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and not worker.get("ports")


@pytest.mark.parametrize("name", RISKMON_SERVICES)
def test_riskmon_service_commands_parse(compose: dict[str, Any], name: str) -> None:
    """Each container's command is a real `riskmon` command line (the image's entrypoint is riskmon)."""
    command = compose["services"][name]["command"]
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    args = build_parser().parse_args(argv)
    assert callable(getattr(args, "func", None))


def test_dockerfile_installs_every_package() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r'^ENTRYPOINT \["riskmon"\]', text, re.M)
    copied = set()
    for line in text.splitlines():
        if line.startswith("COPY "):
            parts = line.split()[1:-1]
            for part in parts:
                if "*" not in part:
                    assert (REPO_ROOT / part).exists(), f"Dockerfile copies missing {part}"
                copied.add(part.rstrip("*").removeprefix("./"))
    includes = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for pattern in includes["include"]:
        top = pattern.rstrip("*")
        assert top in copied, f"Dockerfile does not COPY package {top!r}: `pip install .` would miss it"
    assert "pyproject.toml" in copied
