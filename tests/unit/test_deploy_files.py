"""The deployment files in deploy/ are valid, and say only what the hub reads.

What is checked, and how (deploy/README.md, "What CI checks", says the same):

- deploy/k8s/: every built-in kind with kubernetes-validate, strict (unknown
  fields fail), offline, against the newest Kubernetes it knows and 1.29; then
  what a schema cannot see: probes, resources, budgets, selectors, the
  Secret's keys, the tenancy. The RabbitmqCluster custom resource is NOT
  checked against the operator's CRD (no offline copy of it): only its fields
  by hand, and its affinity and resources as core types.
- deploy/compose.yaml: `docker-compose config -q` (or `docker compose`); with
  neither installed this fails, it does not skip (deploy/setup.sh --browser
  installs Debian's docker-compose, as root). Then the roles, secrets, nodes.
- deploy/systemd/: the required keys, parsed with configparser, always; and
  `systemd-analyze verify` where it exists.
- Everywhere: each HUB_* name is one that hub/settings.py reads, each setting
  parses as the hub parses it, each command is a `hub` command, and the
  settings give the topology of deploy/rabbitmq/definitions.json.
- deploy/Containerfile: its text only (building it needs an engine and a
  registry, which CI has not).
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import hub
from hub import wiring
from hub.broker.definitions import definitions, render
from hub.cli import _parser
from hub.settings import Settings
from hub.tenancy import SCHEMA_FILE, load
from tests.unit.test_definitions import DEFINITIONS, DEMO_ENV, DEMO_TENANCY

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
COMPOSE = DEPLOY / "compose.yaml"
CONTAINERFILE = DEPLOY / "Containerfile"
ROLES = ("ingress", "router", "deliver", "ops")
K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())
QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


# --------------------------------------------------------------------------
# What the hub reads


def settings_names() -> set[str]:
    """Every HUB_* variable hub/settings.py reads: the literals, and NAME_FILE of each secret."""
    tree = ast.parse((ROOT / "hub" / "settings.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        literal = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if literal and re.fullmatch(r"HUB_[A-Z0-9_]+", node.value):
            names.add(node.value)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_secret":
            secret = node.args[1]
            assert isinstance(secret, ast.Constant), "a _secret() name that is not a literal"
            names.add(f"{secret.value}_FILE")
    return names


def deploy_files() -> Iterator[Path]:
    yield COMPOSE
    yield CONTAINERFILE
    yield DEPLOY / "rabbitmq" / "rabbitmq.conf"
    yield from sorted(K8S.glob("*.yaml"))
    yield from sorted(SYSTEMD.iterdir())


def test_the_deploy_files_name_only_settings_the_hub_reads() -> None:
    known = settings_names()
    assert {"HUB_AMQP_URL", "HUB_AMQP_URL_FILE", "HUB_TENANCY_FILE", "HUB_OPS_TOKEN_FILE"} <= known
    for path in deploy_files():
        named = set(re.findall(r"\bHUB_[A-Z0-9_]+", path.read_text(encoding="utf-8")))
        assert named <= known, f"{path.relative_to(ROOT)} names {sorted(named - known)}"


def check_hub_env(env: Mapping[str, str], where: str) -> None:
    """The settings parse as the hub parses them, give the topology of definitions.json,
    and the tenancy's partner secrets are given."""
    plain = {k: v for k, v in env.items() if not (k.startswith("HUB_") and k.endswith("_FILE"))}
    plain.pop("HUB_TENANCY_FILE", None)
    settings = Settings.from_env(plain)
    generated = render(definitions(wiring.topology(settings, load(DEMO_TENANCY, DEMO_ENV))))
    assert generated == DEFINITIONS.read_text(encoding="utf-8"), (
        f"{where}: HUB_NAMESPACE or HUB_RETRY_TIERS give another topology than definitions.json"
    )
    for var in demo_partner_secrets():
        assert var in env or f"{var}_FILE" in env, f"{where}: no {var} for the demo tenancy"


def demo_partner_secrets() -> set[str]:
    raw = tomllib.loads(DEMO_TENANCY.read_text(encoding="utf-8"))
    return {p["settings"]["key_env"] for p in raw["provider"] if "adapter" in p}


def check_command(argv: list[str], where: str) -> None:
    """`hub ARGV` parses (a real subcommand and options)."""
    try:
        _parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: `hub {' '.join(argv)}` is not a hub command")


# --------------------------------------------------------------------------
# Kubernetes


def k8s_documents() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        with path.open(encoding="utf-8") as file:
            documents += [d for d in yaml.safe_load_all(file) if d]
    return documents


def k8s(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    found = [d for d in k8s_documents() if d["kind"] == kind]
    return [d for d in found if name is None or d["metadata"]["name"] == name]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_builtin_manifest_validates_strictly(version: str) -> None:
    checked = 0
    for document in k8s_documents():
        if document["apiVersion"].startswith("rabbitmq.com/"):
            continue  # no offline schema: test_the_rabbitmq_cluster_resource
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{document['kind']}/{document['metadata']['name']}: {exc.message}")
        checked += 1
    assert checked >= 15


def test_a_deployment_per_role_with_its_probes() -> None:
    expected = {
        "ingress": ("/readyz", "/healthz", 8080),
        "ops": ("/healthz", "/healthz", 8081),
    }
    for role in ROLES:
        (deployment,) = k8s("Deployment", f"hub-{role}")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        check_command(container["args"], f"hub-{role}")
        assert container["args"][0] == role
        ready, live = container["readinessProbe"], container["livenessProbe"]
        if role in expected:
            ready_path, live_path, port = expected[role]
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ready["httpGet"]["path"] == ready_path
            assert live["httpGet"]["path"] == live_path
            assert ports[ready["httpGet"]["port"]] == port == ports[live["httpGet"]["port"]]
        else:
            assert ready["exec"]["command"] == live["exec"]["command"] == ["hub", "check"]
        assert deployment["spec"]["replicas"] == (1 if role == "ops" else 2)


def test_resources_are_requested_and_limited() -> None:
    for kind in ("Deployment", "Job"):
        for document in k8s(kind):
            for container in document["spec"]["template"]["spec"]["containers"]:
                resources = container["resources"]
                for what in ("cpu", "memory"):
                    request, limit = resources["requests"][what], resources["limits"][what]
                    assert quantity(request) <= quantity(limit), (document["metadata"], what)


def quantity(text: str) -> float:
    match = QUANTITY.match(str(text))
    assert match, f"not a quantity: {text!r}"
    scale = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    scale |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    return float(match[1]) * scale.get(match[3] or "", 1)


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_a_disruption_budget_per_role_and_services_for_ingress_and_ops() -> None:
    budgets = k8s("PodDisruptionBudget")
    for role in ROLES:
        (deployment,) = k8s("Deployment", f"hub-{role}")
        labels = pod_labels(deployment)
        assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
        matching = [b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(matching) == 1, f"hub-{role}: {len(matching)} disruption budgets"
        if role == "ops":  # one replica: a budget that blocks every drain would be wrong
            assert matching[0]["spec"]["maxUnavailable"] == 1
    for role in ("ingress", "ops"):
        (service,) = k8s("Service", f"hub-{role}")
        (deployment,) = k8s("Deployment", f"hub-{role}")
        assert selects(service["spec"]["selector"], pod_labels(deployment))
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        names = {p["name"] for p in container["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names


def test_settings_secrets_and_tenancy_reach_every_hub_container() -> None:
    (settings,) = k8s("ConfigMap", "hub-settings")
    (tenancy,) = k8s("ConfigMap", "hub-tenancy")
    (secret,) = k8s("Secret", "hub-secrets")
    env = settings["data"]
    check_hub_env(env, "hub-settings")
    assert tenancy["data"]["tenancy.toml"] == DEMO_TENANCY.read_text(encoding="utf-8")
    for name, path in env.items():
        if name.endswith("_FILE") and path.startswith("/run/secrets/hub/"):
            assert path.removeprefix("/run/secrets/hub/") in secret["stringData"], name
    for document in k8s("Deployment") + k8s("Job"):
        spec = document["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        (container,) = spec["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": "hub-settings"}}]
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        assert mounts["/run/secrets/hub"]["secret"]["secretName"] == "hub-secrets"
        if document["kind"] == "Deployment":
            assert mounts["/etc/hub"]["configMap"]["name"] == "hub-tenancy"
            assert env["HUB_TENANCY_FILE"] == "/etc/hub/tenancy.toml"
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (job,) = k8s("Job", "hub-migrate")
    check_command(job["spec"]["template"]["spec"]["containers"][0]["args"], "hub-migrate")


def test_postgres_is_an_external_service() -> None:
    (service,) = k8s("Service", "postgres")
    external = service["spec"].get("type") == "ExternalName"
    without_selector = "selector" not in service["spec"] and (
        k8s("Endpoints", "postgres") or k8s("EndpointSlice")
    )
    assert external or without_selector
    (secret,) = k8s("Secret", "hub-secrets")
    assert "@postgres.hub.svc:" in secret["stringData"]["database-url"]


# The fields of RabbitmqCluster (rabbitmq.com/v1beta1) that the manifest may use,
# as the operator's CRD defines them; anything else must be checked by hand first.
RABBITMQ_SPEC = {"replicas", "image", "resources", "persistence", "rabbitmq", "affinity"}
RABBITMQ_CONFIG = {"additionalConfig", "additionalPlugins", "advancedConfig", "envConfig"}


def test_the_rabbitmq_cluster_resource() -> None:
    """UNCHECKED against the operator's CRD schema (no offline copy): the fields used,
    by hand, and the affinity and resources as the core types they are."""
    (cluster,) = k8s("RabbitmqCluster")
    assert cluster["apiVersion"] == "rabbitmq.com/v1beta1"
    spec = cluster["spec"]
    assert set(spec) <= RABBITMQ_SPEC
    assert spec["replicas"] == 3
    assert spec["image"] == "rabbitmq:3.10-management"
    assert set(spec["persistence"]) <= {"storage", "storageClassName"}
    quantity(spec["persistence"]["storage"])
    assert set(spec["rabbitmq"]) <= RABBITMQ_CONFIG
    assert len(spec["rabbitmq"]["additionalConfig"]) <= 2000  # the CRD's maxLength
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rabbitmq-fields"},
        "spec": {
            "affinity": spec["affinity"],
            "containers": [{"name": "rabbitmq", "resources": spec["resources"]}],
        },
    }
    kubernetes_validate.validate(pod, K8S_VERSIONS[-1], strict=True)
    (secret,) = k8s("Secret", "hub-secrets")
    assert f"@{cluster['metadata']['name']}.hub.svc:5672/" in secret["stringData"]["amqp-url"]


# --------------------------------------------------------------------------
# Compose


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        answer = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if answer.returncode == 0:
            return ["docker", "compose"]
    pytest.fail(
        "neither docker-compose nor `docker compose` is installed, so deploy/compose.yaml "
        "cannot be checked: deploy/setup.sh --browser installs Debian's docker-compose "
        "(as root), or: apt-get install docker-compose"
    )


def compose_config(*args: str) -> subprocess.CompletedProcess[str]:
    # `config` reads the file only: no engine, no network.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    return subprocess.run(
        [*compose_command(), "-f", str(COMPOSE), "config", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    answer = compose_config()
    assert answer.returncode == 0, answer.stderr
    document: dict[str, Any] = yaml.safe_load(answer.stdout)
    return document


def test_compose_config_is_valid() -> None:
    answer = compose_config("-q")
    assert answer.returncode == 0, f"docker-compose config -q: {answer.stderr}"


def secret_names(service: dict[str, Any]) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Target -> host path of a service's bind mounts (Compose v1 prints SRC:DST[:MODE],
    v2 the long form)."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        elif volume["type"] == "bind":
            source, target = volume["source"], volume["target"]
        else:
            continue
        if source.startswith("/"):
            mounts[target] = Path(source).resolve()
    return mounts


def test_compose_runs_each_role_from_the_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    hub = {n: s for n, s in services.items() if s["image"].startswith("connector-hub")}
    commands = sorted(s["command"][0] for s in hub.values())
    assert commands == sorted([*ROLES, *ROLES[:3], "migrate"])
    for name, service in hub.items():
        check_command(service["command"], name)
        check_hub_env(service["environment"], name)
        for var, path in service["environment"].items():
            if var.endswith("_FILE") and path.startswith("/run/secrets/"):
                assert path.removeprefix("/run/secrets/") in secret_names(service), (name, var)
        if service["command"] == ["migrate"]:
            assert service["restart"] == "no"
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        else:
            assert "test" in service["healthcheck"], name
            assert service["depends_on"]["migrate"]["condition"] == (
                "service_completed_successfully"
            )
    for secret in compose["secrets"].values():
        assert Path(secret["file"]).is_file(), secret["file"]


def test_compose_has_a_three_node_rabbitmq_cluster_and_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    nodes = {n: s for n, s in services.items() if s["image"] == "rabbitmq:3.10-management"}
    assert len(nodes) == 3
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text(encoding="utf-8")
    assert "cluster_formation.peer_discovery_backend = classic_config" in conf
    peers = r"^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$"
    listed = set(re.findall(peers, conf, re.M))
    assert listed == {s["hostname"] for s in nodes.values()}
    definitions_dir = re.search(r"^load_definitions = (\S+)$", conf, re.M)
    assert definitions_dir
    for service in nodes.values():
        assert "erlang_cookie" in secret_names(service)
        mounted = bind_mounts(service)
        assert mounted["/etc/rabbitmq/rabbitmq.conf"] == DEPLOY / "rabbitmq" / "rabbitmq.conf"
        assert mounted[f"{definitions_dir[1]}/10-topology.json"] == DEFINITIONS
        assert "test" in service["healthcheck"]
    # Every hub process is told of all three nodes.
    amqp = Settings.from_env({"HUB_AMQP_URL_FILE": str(DEPLOY / "secrets" / "hub_amqp_url")})
    hosts = {re.sub(r"^.*@|:\d+/$", "", url) for url in amqp.amqp_urls}
    assert hosts == {s["hostname"] for s in nodes.values()}
    assert services["postgres"]["image"] == "postgres:15"
    assert "test" in services["postgres"]["healthcheck"]


# --------------------------------------------------------------------------
# systemd


def unit(name: str) -> configparser.ConfigParser:
    # strict=False: a key may repeat in a unit (SystemCallFilter=); the last one is kept.
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string((SYSTEMD / name).read_text(encoding="utf-8"), source=name)
    return parser


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
}


def test_systemd_units_have_the_required_keys() -> None:
    units = {p.name for p in SYSTEMD.glob("*.service")}
    assert units == {f"hub-{r}.service" for r in (*ROLES, "migrate")}
    for role in (*ROLES, "migrate"):
        parsed = unit(f"hub-{role}.service")
        service = parsed["Service"]
        assert parsed["Unit"]["Description"]
        assert (service["User"], service["Group"]) == ("hub", "hub")
        assert service["EnvironmentFile"] == "/etc/hub/hub.env"
        binary, *argv = service["ExecStart"].split()
        assert binary == "/opt/hub/bin/hub"
        assert argv == [role]
        check_command(argv, f"hub-{role}.service")
        for key, value in HARDENING.items():
            assert service[key] == value, (role, key)
        assert parsed["Install"]["WantedBy"] == "multi-user.target"
        if role == "migrate":
            assert service["Type"] == "oneshot"
            assert set(parsed["Unit"]["Before"].split()) == {f"hub-{r}.service" for r in ROLES}
        else:
            # Wants, not Requires: a role whose migrations failed at boot still starts
            # (and retries), and the migrate unit retries until the database answers.
            assert "hub-migrate.service" in parsed["Unit"]["Wants"].split()
            assert "hub-migrate.service" in parsed["Unit"]["After"].split()
        assert service["Restart"] == "on-failure"


def test_the_systemd_environment_file() -> None:
    env = {}
    for line in (SYSTEMD / "hub.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"hub.env: not KEY=VALUE: {line}"
            env[key] = value
    check_hub_env(env, "deploy/systemd/hub.env")


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # the key checks above still run
        pytest.skip("no systemd-analyze on this machine")
    # /opt/hub is not installed here: point ExecStart at a stub, change nothing else.
    stub = tmp_path / "hub"
    stub.write_text("#!/bin/sh\n", encoding="utf-8")
    stub.chmod(0o755)
    for path in SYSTEMD.glob("*.service"):
        text = path.read_text(encoding="utf-8").replace("/opt/hub/bin/hub", str(stub))
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    names = sorted(p.name for p in tmp_path.glob("*.service"))
    answer = subprocess.run(
        [analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    # verify exits 0 on a bad value or an unknown key, and says so: any word is a failure.
    said = (answer.stdout + answer.stderr).strip()
    assert answer.returncode == 0, said
    assert not said


# --------------------------------------------------------------------------
# The image


def test_the_containerfile() -> None:
    text = CONTAINERFILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert re.search(r"^RUN pip install /src\b", text, re.M)
    # What the hub reads at run time is the package's own data, which pip installs.
    assert SCHEMA_FILE.is_relative_to(Path(hub.__file__).parent)
    user = re.search(r"^USER (\S+)$", text, re.M)
    assert user
    assert user[1].split(":")[0] not in ("0", "root")
    assert 'ENTRYPOINT ["hub"]' in lines
    assert 'CMD ["run"]' in lines
    assert re.search(r"^EXPOSE 8080 8081$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*CMD \[\"hub\", \"check\"\]$", text, re.M)
    env = dict(re.findall(r"\b(HUB_[A-Z_]+)=(\S+)", text))
    check_hub_env(env | {f"{v}_FILE": "/run/secrets/x" for v in demo_partner_secrets()}, "image")


def test_the_wheel_carries_the_package_data(tmp_path: Path) -> None:
    # What a non-editable install (the image, a VM) gets: the data the hub reads at run time.
    top = Path(hub.__file__).resolve().parents[1]
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(top),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("connector_hub-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "hub/tenancy.schema.json" in names
    assert "hub/ops/templates/overview.html" in names
    assert {n for n in names if n.startswith("hub/store/migrations/")} == {
        f"hub/store/migrations/{p.name}" for p in (top / "hub/store/migrations").glob("*.sql")
    }
