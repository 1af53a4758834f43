"""The deployment files in deploy/ agree with the code: settings, routes, ports, commands, configs."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from gateway import secrets
from gateway.cli import build_parser
from gateway.config import load_config
from gateway.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
GATEWAY_PORT = 8000
PROBE_PATHS = {"/healthz", "/readyz"}

SETTING_VARIABLES = {f"PANORAMA_{s.name.upper()}" for s in SETTINGS}
PANORAMA_VARIABLE = re.compile(r"\bPANORAMA_[A-Z0-9_]+\b")


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def documents(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s(kind: str) -> list[dict]:
    return [d for p in sorted(K8S.glob("*.yaml")) for d in documents(p) if d.get("kind") == kind]


def one(kind: str, name: str | None = None) -> dict:
    found = [d for d in k8s(kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/k8s, found {len(found)}"
    return found[0]


def compose() -> dict:
    return documents(DEPLOY / "compose.yaml")[0]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def references(value: object) -> set[str]:
    """Every ${env:NAME} in the values (not the comments) of a parsed YAML document; a
    multi-line text (a file in a ConfigMap) is parsed in turn."""
    if isinstance(value, dict):
        return set().union(*map(references, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(references, value)) if value else set()
    if isinstance(value, str):
        if "\n" in value:
            try:
                return references(yaml.safe_load(value))
            except yaml.YAMLError:
                pass
        return {m.group(2).strip() for m in secrets.REFERENCE.finditer(value) if m.group(1) == "env"}
    return set()


def env_references() -> set[str]:
    """Every ${env:NAME} used by a config under deploy/ (the ConfigMap's files included)."""
    return set().union(*(references(d) for p in yaml_files() for d in documents(p)))


def config_files(tmp_path: Path) -> dict[str, Path]:
    """The gateway configs of deploy/, laid out as each container sees them."""
    k8s_dir = tmp_path / "k8s"
    k8s_dir.mkdir()
    for name, text in one("ConfigMap", "panorama-config")["data"].items():
        (k8s_dir / name).write_text(text)
    return {"compose": DEPLOY / "panorama.compose.yaml", "k8s": k8s_dir / "panorama.yaml"}


def fake_environ() -> dict[str, str]:
    return {name: f"fake-{name.lower()}-value-0123456789abcdef0123456789" for name in env_references()}


def gateway_containers() -> list[dict]:
    deployment = one("Deployment", "panorama")
    return deployment["spec"]["template"]["spec"]["containers"]


def named_port(container: dict, port: int | str) -> int:
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    assert numbers, f"port name {port!r} is not a port of container {container['name']}"
    return numbers[0]


# --- every file parses ---


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    docs = documents(path)
    assert docs, f"{path} is empty"
    if path.parent == K8S:
        assert len(docs) == 1, f"{path}: one Kubernetes object per file"
        assert {"apiVersion", "kind", "metadata"} <= set(docs[0])


def test_dockerfile_shape() -> None:
    instructions = dockerfile_instructions()
    stages = [args for word, args in instructions if word == "FROM"]
    assert len(stages) >= 2, "multi-stage: a build stage and a final stage"
    assert all(s.split()[0] == "python:3.11-slim" for s in stages)
    final = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    final_stage = instructions[final:]
    assert any("pip wheel" in args for word, args in instructions[:final] if word == "RUN")
    assert not any("build-essential" in args for _, args in final_stage), "no build tools at run"
    users = [args for word, args in final_stage if word == "USER"]
    assert users and users[-1].split(":")[0] in ("10001", "panorama")
    assert "10001" in " ".join(args for word, args in final_stage if word == "RUN")
    env = " ".join(args for word, args in final_stage if word == "ENV")
    assert "PANORAMA_CONFIG=/etc/panorama/panorama.yaml" in env
    health = [args for word, args in final_stage if word == "HEALTHCHECK"]
    assert health and "/healthz" in health[0] and "urllib" in health[0]


def test_dockerfile_copies_what_the_wheel_needs() -> None:
    copied = {part for word, args in dockerfile_instructions() if word == "COPY"
              and not args.startswith("--from") for part in args.split()[:-1]}
    for needed in ("pyproject.toml", "README.md", "connectors", "gateway"):
        assert needed in copied, f"deploy/Dockerfile must COPY {needed} to build the wheel"
        assert (ROOT / needed).exists()
    ignore = ROOT / ".dockerignore"
    if ignore.exists():
        ignored = {line.strip().rstrip("/") for line in ignore.read_text().splitlines()}
        assert not ignored & {"pyproject.toml", "README.md", "connectors", "gateway"}


# --- settings and environment variables ---


def test_every_panorama_variable_is_real() -> None:
    allowed = SETTING_VARIABLES | {secrets.KEY_VARIABLE} | env_references()
    files = [*yaml_files(), DOCKERFILE, *DEPLOY.glob("*.env*"), *DEPLOY.glob("*.conf")]
    unknown = {f"{p.relative_to(ROOT)}: {name}" for p in files
               for name in PANORAMA_VARIABLE.findall(p.read_text()) if name not in allowed}
    assert not unknown, f"not a setting (docs/settings.md) nor a ${{env:}} reference: {unknown}"


def test_config_references_are_provided() -> None:
    """Every ${env:NAME} of a deploy config is given to the gateways by compose and by k8s."""
    compose_refs = references(yaml.safe_load((DEPLOY / "panorama.compose.yaml").read_text()))
    services = compose()["services"]
    for name in ("gateway-1", "gateway-2"):
        missing = compose_refs - set(services[name]["environment"])
        assert not missing, f"compose {name} lacks {missing}"
    k8s_config = one("ConfigMap", "panorama-config")["data"]["panorama.yaml"]
    k8s_refs = references(yaml.safe_load(k8s_config))
    provided = set(one("ConfigMap", "panorama-settings")["data"]) \
        | set(one("Secret", "panorama-secrets")["stringData"])
    assert not k8s_refs - provided, f"k8s lacks {k8s_refs - provided}"


def test_secret_is_marked_placeholder() -> None:
    secret = one("Secret", "panorama-secrets")
    assert "PLACEHOLDER" in (K8S / "secret.yaml").read_text()
    assert all("REPLACE-ME" in v for v in secret["stringData"].values())
    assert secrets.KEY_VARIABLE in secret["stringData"]


# --- routes, ports, commands ---


def test_probe_paths_are_routes(tmp_path: Path) -> None:
    from gateway.app import create_app
    from gateway.demo.world import build_world
    from gateway.settings import Settings

    world = build_world(tmp_path, customers=60)
    app = create_app(Settings.load(overrides={"config": str(world.config_path)}),
                     environ={"PANORAMA_DEMO_CRM_TOKEN": "test-token"})
    paths = {getattr(route, "path", None) for route in app.routes}
    assert PROBE_PATHS <= paths
    (container,) = gateway_containers()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    health = [args for word, args in dockerfile_instructions() if word == "HEALTHCHECK"]
    assert all(re.findall(r"(/[a-z]+z)\b", h)[0] in paths for h in health)


def test_gateway_ports_are_8000() -> None:
    exposed = [int(p.split("/")[0]) for word, args in dockerfile_instructions() if word == "EXPOSE"
               for p in args.split()]
    assert exposed == [GATEWAY_PORT]
    assert any(f"--port {GATEWAY_PORT}" in " ".join(exec_form(args))
               for word, args in dockerfile_instructions() if word == "CMD")
    (container,) = gateway_containers()
    assert [p["containerPort"] for p in container["ports"]] == [GATEWAY_PORT]
    service = one("Service", "panorama")
    for port in service["spec"]["ports"]:
        assert named_port(container, port["targetPort"]) == GATEWAY_PORT
        assert port["port"] == GATEWAY_PORT
    for probe in ("readinessProbe", "livenessProbe"):
        port = container[probe]["httpGet"]["port"]
        assert port in [p["targetPort"] for p in service["spec"]["ports"]], \
            f"{probe} must use the Service's targetPort"
        assert named_port(container, port) == GATEWAY_PORT
    services = compose()["services"]
    for name in ("gateway-1", "gateway-2"):
        assert [int(p) for p in services[name]["expose"]] == [GATEWAY_PORT]
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert set(re.findall(r"server (gateway-\d):(\d+)", nginx)) == {
        ("gateway-1", str(GATEWAY_PORT)), ("gateway-2", str(GATEWAY_PORT))}
    assert "listen 8080" in nginx and "8080:8080" in services["proxy"]["ports"]


def test_images_built_from_this_repo_use_deploy_dockerfile() -> None:
    compose_dir = DEPLOY
    built = {name: s["build"] for name, s in compose()["services"].items() if "build" in s}
    assert {"gateway-1", "gateway-2"} <= set(built)
    for name, build in built.items():
        context = (compose_dir / build["context"]).resolve()
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve(), name
        assert DOCKERFILE.is_file()
    assert "deploy/Dockerfile" in (K8S / "deployment.yaml").read_text()


def subcommands() -> set[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return set(sub.choices)


def test_commands_are_real_subcommands() -> None:
    commands = [exec_form(args) for word, args in dockerfile_instructions() if word == "CMD"]
    assert commands == [["panorama", "serve", "--host", "0.0.0.0", "--port", "8000"]]
    (container,) = gateway_containers()
    others = [s["command"] for s in compose()["services"].values() if "command" in s]
    for command in [*commands, container.get("args", []), *others]:
        if command and command[0] == "panorama":
            assert command[1] in subcommands(), command
            build_parser().parse_args(command[1:])  # options exist too (exits on a bad one)


# --- the gateway configs ---


def test_configs_parse(tmp_path: Path) -> None:
    environ = fake_environ()
    for where, path in config_files(tmp_path).items():
        config = load_config(path, environ)
        assert config.sources, where
        assert config.policy is not None, f"{where}: the policy file is loaded"
        assert config.identity is not None and config.identity.store.startswith("postgresql://")
        for store in (config.audit.store, config.consent.store):
            assert store.startswith("postgresql://"), f"{where}: replicas share their stores"


def test_configs_hold_no_inline_secret() -> None:
    for path in (DEPLOY / "panorama.compose.yaml",):
        doc = yaml.safe_load(path.read_text())
        for source in doc["sources"].values():
            for key, value in source["connection"].items():
                assert not secrets.inline_secret(key, value), f"{path}: {key}"


def test_compose_policy_mount_matches_config() -> None:
    policy = yaml.safe_load((DEPLOY / "panorama.compose.yaml").read_text())["policy"]
    assert (DEPLOY / policy).is_file()
    for name in ("gateway-1", "gateway-2"):
        volumes = compose()["services"][name]["volumes"]
        assert "./panorama.compose.yaml:/etc/panorama/panorama.yaml:ro" in volumes
        assert f"./{policy}:/etc/panorama/{policy}:ro" in volumes
        env = compose()["services"][name]["environment"]
        assert env["PANORAMA_CONFIG_STORE"].startswith("postgresql://")
        assert env["PANORAMA_CACHE_REDIS_URL"].startswith("redis://redis:")


def test_configmap_policy_is_the_example() -> None:
    data = one("ConfigMap", "panorama-config")["data"]
    assert data["policies.yaml"] == (DEPLOY / "policies.example.yaml").read_text()
    assert yaml.safe_load(data["panorama.yaml"])["policy"] == "policies.yaml"


def test_compose_init_scripts_exist() -> None:
    for service in ("shop-pg", "shop-mariadb"):
        mounts = [v for v in compose()["services"][service]["volumes"]
                  if "docker-entrypoint-initdb.d" in v]
        assert mounts, service
        folder = DEPLOY / mounts[0].split(":")[0]
        assert list(folder.glob("*.sql")), f"{folder} has no SQL"


# --- Kubernetes objects refer to each other correctly ---


def test_k8s_wiring() -> None:
    deployment = one("Deployment", "panorama")
    spec = deployment["spec"]
    labels = spec["template"]["metadata"]["labels"]
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"requests", "limits"} <= set(container["resources"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/etc/panorama"]]["configMap"]["name"] == "panorama-config"
    sources = {next(iter(e.values()))["name"]: kind for e in container["envFrom"]
               for kind in e}
    assert sources == {"panorama-settings": "configMapRef", "panorama-secrets": "secretRef"}
    assert one("ConfigMap", "panorama-settings")["data"]["PANORAMA_CONFIG"] == \
        "/etc/panorama/panorama.yaml"

    service = one("Service", "panorama")
    assert service["spec"]["selector"].items() <= labels.items()

    hpa = one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]

    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
