"""docker-compose.yml (no Docker engine here): it parses, what it mounts exists, images are pinned,
services have health checks, and every service agrees with stream/settings.py, the topics of
stream/runtime/topics.py, the Prometheus scrape config and the Grafana provisioning."""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from stream.analytics.schema import parse_url
from stream.runtime.topics import PUBLIC_TOPICS
from stream.settings import ENVIRONMENT

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PROMETHEUS_CONFIG = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())


def env(service: str) -> dict[str, str]:
    environment = SERVICES[service].get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def test_the_stack_has_every_component():
    assert {"kafka", "clickhouse", "prometheus", "grafana", "worker", "loadgen"} <= set(SERVICES)
    assert SERVICES["loadgen"]["profiles"] == ["load"]
    assert "profiles" not in SERVICES["worker"]


def test_images_are_pinned():
    for name, service in SERVICES.items():
        if "build" in service:
            assert (ROOT / service["build"]["context"] / service["build"].get("dockerfile", "Dockerfile")).is_file()
        image = service.get("image")
        assert image, f"{name}: no image"
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and "/" not in tag, f"{name}: image {image!r} not pinned"
        assert re.fullmatch(r"v?\d+(\.\d+)+", tag), f"{name}: tag {tag!r} is not a version"


def test_long_running_services_have_health_checks():
    for name in ("kafka", "clickhouse", "prometheus", "grafana", "worker"):
        check = SERVICES[name].get("healthcheck", {})
        assert check.get("test"), f"{name}: no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL")


def test_depends_on_names_services_and_conditions_are_met():
    for name, service in SERVICES.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{name} waits for {dependency}'s health, which has none"


def test_every_mounted_file_exists():
    mounts = 0
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
                mounts += 1
            else:
                assert source in COMPOSE["volumes"], f"{name}: undeclared volume {source}"
    assert mounts >= 4


def test_workers_scale():
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker  # fixed host ports would collide between replicas
    assert not any(":" in str(v) and str(v).split(":")[0].startswith("./") and not str(v).endswith(":ro")
                   for v in worker.get("volumes", []))


@pytest.mark.parametrize("service", ["worker", "loadgen"])
def test_worker_environment_is_the_projects_settings(service):
    variables = env(service)
    unknown = set(variables) - set(ENVIRONMENT)
    assert not unknown, f"{service}: variables stream/settings.py does not read: {unknown}"
    for name, value in variables.items():
        default = ENVIRONMENT[name][0]
        if re.fullmatch(r"\d+", default):
            assert re.fullmatch(r"\d+", value), f"{name}={value!r} is not an integer"
        if re.fullmatch(r"\d+\.\d+", default):
            float(value)


def test_worker_reaches_kafka_on_its_listener():
    broker = urlparse(env("worker")["KAFKA_BROKER"])
    assert broker.scheme == "kafka" and broker.hostname == "kafka"
    kafka = env("kafka")
    advertised = {urlparse(url).netloc for url in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert f"{broker.hostname}:{broker.port}" in advertised
    assert "broker" in kafka["KAFKA_PROCESS_ROLES"] and "controller" in kafka["KAFKA_PROCESS_ROLES"]  # KRaft
    assert "zookeeper" not in SERVICES


def test_topics_are_the_pipelines_and_co_partitioned():
    topics = env("topics")
    assert set(topics["TOPICS"].split()) == set(PUBLIC_TOPICS)
    partitions = env("worker")["CUSTOMS_PARTITIONS"]
    assert topics["PARTITIONS"] == partitions == env("loadgen")["CUSTOMS_PARTITIONS"]
    assert env("kafka")["KAFKA_NUM_PARTITIONS"] == partitions
    script = " ".join(SERVICES["topics"]["command"])
    assert "--partitions $$PARTITIONS" in script and "--if-not-exists" in script
    assert shlex.split(script)  # a well-formed shell command


def test_worker_reaches_clickhouse_with_its_credentials():
    url = env("worker")["CLICKHOUSE_URL"]
    endpoint = parse_url(url)
    clickhouse = env("clickhouse")
    assert endpoint.host == "clickhouse" and endpoint.port == 9000
    assert (endpoint.database, endpoint.user, endpoint.password) == (
        clickhouse["CLICKHOUSE_DB"], clickhouse["CLICKHOUSE_USER"], clickhouse["CLICKHOUSE_PASSWORD"])
    assert SERVICES["worker"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"


def test_prometheus_scrapes_every_worker_on_the_metrics_port():
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["prometheus"]["volumes"] if v.startswith(".")}
    config_path = next(arg.split("=", 1)[1] for arg in SERVICES["prometheus"]["command"] if arg.startswith("--config.file="))
    assert (ROOT / mounts[config_path]).resolve() == (ROOT / "deploy/prometheus/prometheus.yml").resolve()
    job = next(job for job in PROMETHEUS_CONFIG["scrape_configs"] if job["job_name"] == "customs-stream")
    sd = job["dns_sd_configs"][0]
    assert sd["names"] == ["worker"] and sd["type"] == "A"  # one address per replica
    port = env("worker")["CUSTOMS_METRICS_PORT"]
    assert str(sd["port"]) == port
    assert port in [str(p) for p in SERVICES["worker"]["expose"]]


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards():
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["grafana"]["volumes"] if v.startswith(".")}
    datasources = yaml.safe_load((ROOT / mounts["/etc/grafana/provisioning/datasources"] / "prometheus.yml").read_text())
    source = datasources["datasources"][0]
    assert source["type"] == "prometheus" and urlparse(source["url"]).hostname == "prometheus"
    assert urlparse(source["url"]).port == 9090
    providers = yaml.safe_load((ROOT / mounts["/etc/grafana/provisioning/dashboards"] / "customs-stream.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    assert path in mounts and list((ROOT / mounts[path]).glob("*.json"))
    home = env("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / mounts[path] / Path(home).name).is_file() and home.startswith(path)


def test_dockerfile_runs_the_cli_and_exposes_the_default_ports():
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["customs-stream"]' in text
    exposed = set(re.search(r"^EXPOSE (.+)$", text, re.M).group(1).split())
    assert {ENVIRONMENT["CUSTOMS_METRICS_PORT"][0], ENVIRONMENT["CUSTOMS_WEB_PORT"][0]} <= exposed
    for name in re.findall(r"\b(CUSTOMS_[A-Z_]+|CLICKHOUSE_[A-Z_]+|KAFKA_[A-Z_]+)=", text):
        assert name in ENVIRONMENT
    assert SERVICES["worker"]["command"][0] == "worker" and SERVICES["loadgen"]["command"] == ["loadgen"]


def test_workers_run_every_stream_domain_and_the_risk_agent_its_own_group():
    from stream.app import load_domains
    from stream.settings import load

    def option(command, name):
        return command[command.index(name) + 1]

    worker, risk = SERVICES["worker"]["command"], SERVICES["risk"]["command"]
    names = option(worker, "--domains").split(",")
    assert set(names) == {"warehouse", "parcels", "audit", "taxfree"}
    assert option(risk, "--domains") == "risk" and option(risk, "--app-id") != env("worker").get("CUSTOMS_APP_ID")
    assert len(load_domains(load(), names + ["risk"])) == 5  # every name is a domain the worker can load
    job = next(job for job in PROMETHEUS_CONFIG["scrape_configs"] if job["job_name"] == "customs-stream-risk")
    assert job["dns_sd_configs"][0]["names"] == ["risk"]
