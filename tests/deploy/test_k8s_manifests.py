"""deploy/k8s: every overlay renders, is valid Kubernetes 1.32, and agrees with the code.

``kubectl kustomize`` renders each overlay once per module; every object is checked against the
Kubernetes 1.32 schemas bundled by PyPI's kubernetes-validate (offline, strict: unknown fields
fail). Then the rendered objects are held to the code: the topology's ports and commands, the
variables declared in upcoach_llm/common/variables.py (and which process reads each), the routes
the gateway serves without a key, who calls whom (the readers of each ``<NAME>_ADDR``), the
config files, and the guide's values in .env.<environment>.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from tests.support.paths import REPO_ROOT
from upcoach_llm.api.topology import BY_NAME, GATEWAY, GRPC_SERVICES, SERVICES, Service
from upcoach_llm.common.channels import grpc_target
from upcoach_llm.common.config import PACKAGED_CONFIG_DIR
from upcoach_llm.common.variables import VARIABLES
from upcoach_llm.gateway.http.overload import UNCAPPED_PATHS

KUBECTL = shutil.which("kubectl")
K8S_VERSION = "1.32.0"
OVERLAYS = ("development", "staging", "production")
IMAGE = "upcoach-llm"
SECRET = "upcoach-llm-secrets"
# Pods allowed to call the services as upcoach_client does (the "client" reader).
CLIENT_LABEL = {"upcoach.com/llm-client": "true"}
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}
# The guide's values each overlay must carry, as .env.<environment> states them.
GUIDE_VALUES = ("ENVIRONMENT", "LOG_LEVEL", "RATE_LIMIT_RPM", "CACHE_TTL", "TLS_ENABLED",
                "CORS_ORIGINS")
VLLM_VALUES = ("VLLM_MODEL", "GPU_MEMORY_UTILIZATION", "TENSOR_PARALLEL_SIZE")

needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: the Kubernetes manifests cannot be rendered "
                            "(install kubectl 1.32+, which bundles kustomize)")

Obj = dict[str, Any]


# --- rendering and lookups ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    """Every overlay's objects, as ``kubectl kustomize deploy/k8s/overlays/<env>`` prints them."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    out = {}
    for overlay in OVERLAYS:
        result = subprocess.run([KUBECTL, "kustomize", f"deploy/k8s/overlays/{overlay}"],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                                check=False)
        assert result.returncode == 0, f"{overlay}: {result.stderr}"
        out[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return out


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def workloads(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(Deployment or StatefulSet, its pod spec)."""
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet"):
            yield o, o["spec"]["template"]["spec"]


def stack(objects: list[Obj]) -> dict[str, tuple[Obj, Obj, Obj]]:
    """The stack's processes by topology name: (Deployment, pod spec, container of the image)."""
    out = {}
    for workload, pod in workloads(objects):
        for container in pod["containers"]:
            if container["image"].split(":")[0] == IMAGE:
                command = container["command"][0]
                process = next(s for s in SERVICES if s.script == command)
                assert process.name not in out, f"{process.name} runs twice"
                out[process.name] = (workload, pod, container)
    return out


def config_map(objects: list[Obj], name: str) -> dict[str, str]:
    return named(objects, "ConfigMap", name).get("data", {})


def config_map_named(objects: list[Obj], generated: str) -> dict[str, str]:
    """A generated ConfigMap by the name it has before kustomize adds its hash."""
    found = [o for o in of_kind(objects, "ConfigMap")
             if re.fullmatch(rf"{re.escape(generated)}-[a-z0-9]{{10}}", o["metadata"]["name"])]
    assert len(found) == 1, f"ConfigMap {generated}: {len(found)} rendered"
    return found[0].get("data", {})


def environment(objects: list[Obj], container: Obj) -> dict[str, Any]:
    """A container's variables: a value, or the valueFrom reference (envFrom ConfigMaps resolved;
    explicit env wins, as in Kubernetes)."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, f"{container['name']}: envFrom only from ConfigMaps"
        env.update(config_map(objects, source["configMapRef"]["name"]))
    for item in container.get("env", []):
        env[item["name"]] = item["value"] if "value" in item else item["valueFrom"]
    return env


def resolved(objects: list[Obj], value: Any) -> str | None:
    """A variable's value, following configMapKeyRef; None for a Secret's."""
    if isinstance(value, str):
        return value
    if "configMapKeyRef" in value:
        ref = value["configMapKeyRef"]
        return config_map(objects, ref["name"])[ref["key"]]
    assert "secretKeyRef" in value, value
    return None


def port_number(container: Obj, port: int | str) -> int:
    """A probe's or policy's port, numbered or named after a container port."""
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert numbers, f"{container['name']}: no port named {port!r}"
    return numbers[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def env_file(environment_name: str) -> dict[str, str]:
    """NAME=value lines of .env.<environment>, inline comments dropped."""
    values = {}
    for line in (REPO_ROOT / f".env.{environment_name}").read_text().splitlines():
        if m := re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line):
            values[m.group(1)] = re.sub(r"\s+#.*$", "", m.group(2)).strip()
    return values


def overlays() -> pytest.MarkDecorator:
    return pytest.mark.parametrize("overlay", OVERLAYS)


# --- schema ------------------------------------------------------------------------------------

@needs_kubectl
@overlays()
def test_every_object_is_valid_kubernetes_1_32(rendered: dict[str, list[Obj]],
                                               overlay: str) -> None:
    objects = rendered[overlay]
    assert objects
    for obj in objects:
        where = f"{overlay}: {obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {exc.message} at {'/'.join(map(str, exc.path))}")
    namespaces = of_kind(objects, "Namespace")
    assert len(namespaces) == 1, "each overlay creates its namespace"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == namespaces[0]["metadata"]["name"], obj
    assert namespaces[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


BROKEN = {
    "a misspelled field": ("livenessprobe", {}),
    "a named containerPort": ("ports", [{"containerPort": "http"}]),
    "a string for resources": ("resources", "1 CPU"),
}


@pytest.mark.parametrize("field,value", BROKEN.values(), ids=BROKEN.keys())
def test_the_schema_check_rejects_a_broken_object(field: str, value: Any) -> None:
    """So a validator that accepts everything cannot pass the test above."""
    container = {"name": "c", "image": IMAGE}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                  "spec": {"selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [container]}}}}
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    container[field] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    del deployment["spec"]["template"]["spec"]["containers"]
    del container[field]
    with pytest.raises(kubernetes_validate.ValidationError, match="containers"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


# --- every container ---------------------------------------------------------------------------

@needs_kubectl
@overlays()
def test_every_container_is_bounded_probed_and_unprivileged(rendered: dict[str, list[Obj]],
                                                            overlay: str) -> None:
    uid = int(re.search(r"useradd .*--uid (\d+)", (REPO_ROOT / "Dockerfile").read_text())[1])
    for workload, pod in workloads(rendered[overlay]):
        name = f"{overlay}: {workload['kind']}/{workload['metadata']['name']}"
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["enableServiceLinks"] is False, (
            f"{name}: service links set <SERVICE>_PORT=tcp://..., which the stack reads")
        assert pod["automountServiceAccountToken"] is False, name
        mounts = {v["name"] for v in pod.get("volumes", [])}
        mounts |= {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{name}, container {container['name']}"
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"].get(bound, {})), (
                    f"{where}: no cpu/memory {bound}")
            if container in pod["containers"]:
                assert "livenessProbe" in container and "readinessProbe" in container, where
            security = container["securityContext"]
            non_root = security.get("runAsNonRoot", pod["securityContext"].get("runAsNonRoot"))
            assert non_root is True, f"{where}: may run as root"
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            user = security.get("runAsUser", pod["securityContext"].get("runAsUser"))
            assert user and user != 0, where
            if container["image"].split(":")[0] == IMAGE:
                assert user == uid, f"{where}: runs as {user}, the image's user is {uid}"
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in mounts, f"{where}: mounts unknown volume {mount['name']}"


@needs_kubectl
@overlays()
def test_the_five_processes_run_from_the_one_image(rendered: dict[str, list[Obj]],
                                                   overlay: str) -> None:
    processes = stack(rendered[overlay])
    assert set(processes) == {s.name for s in SERVICES}
    assert len({c["image"] for _, _, c in processes.values()}) == 1
    for name, (deployment, _, container) in processes.items():
        assert deployment["metadata"]["name"] == name
        assert container["command"] == [BY_NAME[name].script]


# --- ports, probes and metrics agree with the code ---------------------------------------------

@needs_kubectl
@overlays()
def test_ports_and_probes_match_the_topology(rendered: dict[str, list[Obj]],
                                             overlay: str) -> None:
    objects = rendered[overlay]
    for service in SERVICES:
        _, _, container = stack(objects)[service.name]
        env = environment(objects, container)
        port = int(env.get(service.port_env, service.port))
        assert port == service.port, f"{service.port_env}={port}, the topology says {service.port}"
        name = "grpc" if service.grpc else "http"
        assert port_number(container, name) == port, f"{service.name}: container port"
        probes = [container[p] for p in ("startupProbe", "readinessProbe", "livenessProbe")
                  if p in container]
        for probe in probes:
            kind = "grpc" if service.grpc else "httpGet"
            assert kind in probe, f"{service.name}: {kind} probes"
            assert port_number(container, probe[kind]["port"]) == port, service.name
        if service.grpc:
            assert "startupProbe" in container, f"{service.name}: loads before it serves"


@needs_kubectl
@overlays()
def test_the_gateway_leaves_the_endpoints_before_it_drains_and_lives_when_full(
        rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    _, pod, container = stack(objects)[GATEWAY.name]
    pause = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    grace = float(resolved(objects, environment(objects, container)["GATEWAY_GRACE_S"]) or 0)
    assert pod["terminationGracePeriodSeconds"] > float(pause[1]) + grace
    assert container["livenessProbe"]["httpGet"]["path"].encode() in UNCAPPED_PATHS


def gateway_probe_paths(objects: list[Obj]) -> set[str]:
    _, _, container = stack(objects)[GATEWAY.name]
    return {container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")}


def pod_annotations(objects: list[Obj], service: Service) -> dict[str, str]:
    deployment, _, _ = stack(objects)[service.name]
    return deployment["spec"]["template"]["metadata"].get("annotations", {})


@needs_kubectl
async def test_the_gateway_serves_its_probe_paths_without_a_key(
        rendered: dict[str, list[Obj]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The real gateway app, keys on and nothing behind it: each path the kubelet asks for exists
    and needs no key (/readyz may say 503: no router here); /metrics on the public port is
    closed, so Prometheus scrapes the metrics port (the annotations' test)."""
    from upcoach_llm.gateway.app import create_app
    from upcoach_llm.gateway.deps import Dependencies
    from upcoach_llm.gateway.settings import GatewaySettings

    paths = set().union(*(gateway_probe_paths(objects) for objects in rendered.values()))
    assert {"/livez", "/readyz"} <= paths
    nowhere = "127.0.0.1:1"
    for name, value in {"LLM_API_KEY": "k8s-test-key-0123456789", "INTERNAL_TOKEN": "t" * 24,
                        "REDIS_URL": "redis://127.0.0.1:1/0", "HEALTH_TIMEOUT_S": "0.2",
                        "ENVIRONMENT": "development", "TLS_ENABLED": "false",
                        **{s.addr_env: nowhere for s in GRPC_SERVICES}}.items():
        monkeypatch.setenv(name, value)
    deps = Dependencies.build(GatewaySettings.from_env())
    try:
        transport = httpx.ASGITransport(app=create_app(deps))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            assert (await client.get("/no-such-path")).status_code == 401  # the test can fail
            assert (await client.get("/metrics")).status_code == 401
            for path in sorted(paths):
                status = (await client.get(path)).status_code
                assert status not in (401, 403, 404), f"GET {path}: {status}"
                assert status in (200, 503), f"GET {path}: {status}"
    finally:
        await deps.close()


@needs_kubectl
@overlays()
def test_metrics_annotations_match_the_metrics_ports(rendered: dict[str, list[Obj]],
                                                     overlay: str) -> None:
    objects = rendered[overlay]
    for service in SERVICES:
        _, _, container = stack(objects)[service.name]
        annotations = pod_annotations(objects, service)
        env = environment(objects, container)
        assert annotations["prometheus.io/scrape"] == "true", service.name
        assert annotations["prometheus.io/path"] == "/metrics", service.name
        metrics = int(env[service.metrics_port_env])
        assert metrics > 0, f"{service.metrics_port_env}: 0 serves no metrics"
        assert metrics != int(env[service.port_env])
        assert port_number(container, "metrics") == metrics
        assert annotations.get("prometheus.io/scheme", "http") == "http", service.name
        if not service.grpc:  # the gateway's probes go over TLS when TLS_ENABLED
            tls = VARIABLES.value("TLS_ENABLED", environ={"TLS_ENABLED": env["TLS_ENABLED"]})
            for probe in ("readinessProbe", "livenessProbe"):
                scheme = container[probe]["httpGet"].get("scheme", "HTTP")
                assert scheme == ("HTTPS" if tls else "HTTP"), f"{overlay}: {probe} scheme"
        assert int(annotations["prometheus.io/port"]) == metrics, service.name


# --- variables ---------------------------------------------------------------------------------

@needs_kubectl
@overlays()
def test_every_variable_is_declared_and_read_by_its_process(rendered: dict[str, list[Obj]],
                                                            overlay: str) -> None:
    objects = rendered[overlay]
    for name, (_, _, container) in stack(objects).items():
        env = environment(objects, container)
        for variable, value in env.items():
            declared = VARIABLES[variable]  # KeyError: not in upcoach_llm/common/variables.py
            assert {name, "all"} & set(declared.readers), (
                f"{overlay}: {name} is given {variable}, which only {declared.readers} read")
            text = resolved(objects, value)
            if text:  # typed and bounded as the process will read it
                VARIABLES.value(variable, environ={variable: text})


@needs_kubectl
@overlays()
def test_the_guides_values_follow_the_env_files(rendered: dict[str, list[Obj]],
                                                overlay: str) -> None:
    objects = rendered[overlay]
    expected = env_file(overlay)
    _, _, gateway = stack(objects)[GATEWAY.name]
    env = environment(objects, gateway)
    for variable in GUIDE_VALUES:
        assert env[variable] == expected[variable], f"{overlay}: {variable}"
    if overlay == "production":
        _, _, router = stack(objects)["router"]
        values = {**environment(objects, router),
                  **config_map_named(objects, "vllm")}
        for variable in VLLM_VALUES:
            assert values[variable] == expected[variable], f"{overlay}: {variable}"


@needs_kubectl
@overlays()
def test_the_config_files_are_mounted_where_upcoach_config_dir_says(
        rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    files = {p.name: p.read_text() for p in PACKAGED_CONFIG_DIR.glob("*.yaml")}
    assert files
    for name, (_, pod, container) in stack(objects).items():
        folder = environment(objects, container)["UPCOACH_CONFIG_DIR"]
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == folder)
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert config_map(objects, volume["configMap"]["name"]) == files, (
            f"{name}: the ConfigMap is not upcoach_llm/config/*.yaml "
            "(a new file belongs in upcoach_llm/config/Kustomization)")


# --- services and who may call whom ------------------------------------------------------------

@needs_kubectl
@overlays()
def test_callers_find_every_replica_through_headless_services(rendered: dict[str, list[Obj]],
                                                             overlay: str) -> None:
    objects = rendered[overlay]
    processes = stack(objects)
    for service in GRPC_SERVICES:
        _, _, gateway = processes[GATEWAY.name]
        address = resolved(objects, environment(objects, gateway)[service.addr_env])
        assert address == f"dns:///{service.name}:{service.port}", service.addr_env
        assert grpc_target(service.addr_env, address) == address
        k8s_service = named(objects, "Service", service.name)
        assert k8s_service["spec"]["clusterIP"] == "None", f"{service.name}: not headless"
        pod_labels = processes[service.name][0]["spec"]["template"]["metadata"]["labels"]
        assert selects(k8s_service["spec"]["selector"], pod_labels)
        assert service.port in [p["port"] for p in k8s_service["spec"]["ports"]]
    _, _, router = processes["router"]
    generation = resolved(objects, environment(objects, router)["GENERATION_ADDR"])
    assert generation == resolved(objects, environment(objects, gateway)["GENERATION_ADDR"])
    front = named(objects, "Service", GATEWAY.name)
    assert front["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert front["spec"].get("clusterIP") != "None"
    assert [p["port"] for p in front["spec"]["ports"]] == [GATEWAY.port]


def allowed(objects: list[Obj], labels: dict[str, str], port: int,
            container: Obj) -> list[dict[str, Any]]:
    """The ``from`` peers of every rule that admits ``port`` to pods with these labels."""
    peers = []
    for policy in of_kind(objects, "NetworkPolicy"):
        if not selects(policy["spec"]["podSelector"].get("matchLabels", {}), labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("ports"), f"{policy['metadata']['name']}: a rule opens every port"
            if port in [port_number(container, p["port"]) for p in rule["ports"]]:
                peers.extend(rule.get("from", [{}]))
    return peers


def callers(peers: list[dict[str, Any]]) -> tuple[set[str], bool, bool, bool]:
    """(pod names of this namespace, whether upcoach_client pods may call, Prometheus may,
    anyone may)."""
    names, clients, monitoring, anyone = set(), False, False, False
    for peer in peers:
        if not peer:
            anyone = True
        elif peer == {"namespaceSelector": {"matchLabels": MONITORING}}:
            monitoring = True
        elif "namespaceSelector" in peer:
            assert peer["podSelector"]["matchLabels"] == CLIENT_LABEL, peer
            clients = True
        else:
            names.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
    return names, clients, monitoring, anyone


@needs_kubectl
@overlays()
def test_network_policies_admit_exactly_the_callers_in_the_code(rendered: dict[str, list[Obj]],
                                                               overlay: str) -> None:
    """<NAME>_ADDR's readers are the processes that call <NAME> (REDIS_URL's, VLLM_URL's: those
    that use Redis, vLLM); nobody else gets in, except Prometheus to the metrics ports."""
    objects = rendered[overlay]
    deny = named(objects, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    targets = [(s.name, s.port, s.addr_env) for s in GRPC_SERVICES]
    redis = [w for w, _ in workloads(objects) if w["metadata"]["name"] == "redis"]
    vllm = [w for w, _ in workloads(objects) if w["metadata"]["name"] == "vllm"]
    targets += [("redis", 6379, "REDIS_URL")] if redis else []
    targets += [("vllm", 8000, "VLLM_URL")] if vllm else []
    pods = {w["metadata"]["name"]: (pod, w["spec"]["template"]["metadata"]["labels"])
            for w, pod in workloads(objects)}
    for name, port, variable in targets:
        pod, labels = pods[name]
        container = pod["containers"][0]
        readers = set(VARIABLES[variable].readers)
        names, clients, monitoring, anyone = callers(allowed(objects, labels, port, container))
        assert not anyone, f"{overlay}: anyone may reach {name}"
        assert names == readers - {"client", "compose"}, f"{overlay}: callers of {name}"
        assert clients == ("client" in readers), f"{overlay}: upcoach_client and {name}"
        ports = [p["containerPort"] for p in container["ports"] if p["containerPort"] != port]
        for metrics in ports:
            peers = allowed(objects, labels, metrics, container)
            assert peers and all(p == {"namespaceSelector": {"matchLabels": MONITORING}}
                                 for p in peers), f"{overlay}: {name}:{metrics}"
        assert monitoring == (name == "vllm"), f"{overlay}: Prometheus and {name}:{port}"
    _, gateway_labels = pods[GATEWAY.name]
    gateway = stack(objects)[GATEWAY.name][2]
    assert callers(allowed(objects, gateway_labels, GATEWAY.port, gateway))[3], (
        "the gateway is the public door")
    metrics = port_number(gateway, "metrics")
    assert allowed(objects, gateway_labels, metrics, gateway) == [
        {"namespaceSelector": {"matchLabels": MONITORING}}], f"{overlay}: gateway:{metrics}"


# --- scaling -----------------------------------------------------------------------------------

@needs_kubectl
@overlays()
def test_every_service_autoscales_and_has_a_disruption_budget(rendered: dict[str, list[Obj]],
                                                              overlay: str) -> None:
    objects = rendered[overlay]
    for name, (deployment, _, _) in stack(objects).items():
        assert "replicas" not in deployment["spec"], f"{name}: its autoscaler owns replicas"
        hpas = [h for h in of_kind(objects, "HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1",
                                                   "kind": "Deployment", "name": name}]
        assert len(hpas) == 1, f"{overlay}: {name} has {len(hpas)} autoscalers"
        low, high = hpas[0]["spec"]["minReplicas"], hpas[0]["spec"]["maxReplicas"]
        assert 1 <= low <= high, name
        if overlay == "production":
            assert low >= 2, f"production: {name} runs on one pod"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        budgets = [b for b in of_kind(objects, "PodDisruptionBudget")
                   if selects(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(budgets) == 1, f"{overlay}: {name} has {len(budgets)} disruption budgets"


# --- secrets, Redis, vLLM ----------------------------------------------------------------------

def secret_refs(objects: list[Obj]) -> tuple[set[str], dict[str, bool]]:
    """The Secrets containers read, and each key read with whether it may be absent."""
    names: set[str] = set()
    keys: dict[str, bool] = {}
    for _, pod in workloads(objects):
        for container in pod.get("initContainers", []) + pod["containers"]:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
                    keys[ref["key"]] = keys.get(ref["key"], True) and ref.get("optional", False)
    return names, keys


@needs_kubectl
@overlays()
def test_secrets_are_placeholders_in_development_and_the_operators_elsewhere(
        rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    names, keys = secret_refs(objects)
    required = {k for k, optional in keys.items() if not optional}
    assert {"INTERNAL_TOKEN", "LLM_API_KEY"} <= required
    secrets = [s for s in of_kind(objects, "Secret") if s["metadata"]["name"].startswith(SECRET)]
    if overlay == "development":
        assert len(secrets) == 1
        assert names == {secrets[0]["metadata"]["name"]}
        data = {k: base64.b64decode(v).decode() for k, v in secrets[0]["data"].items()}
        assert required <= set(data)
        for token in ("INTERNAL_TOKEN", "INTERNAL_ADMIN_TOKEN"):
            assert len(data[token]) >= 16, f"{token}: the services refuse shorter ones"
    else:
        assert not secrets, f"{overlay}: placeholder secrets would reach a real environment"
        assert names == {SECRET}, "the operator's Secret, by its plain name"
        kubernetes = (REPO_ROOT / "README.md").read_text().split("## Kubernetes", 1)[1]
        for key in keys:
            assert f"`{key}`" in kubernetes, f"README's Kubernetes section omits {key}"


@needs_kubectl
@overlays()
def test_redis_in_cluster_except_in_production(rendered: dict[str, list[Obj]],
                                               overlay: str) -> None:
    objects = rendered[overlay]
    _, _, gateway = stack(objects)[GATEWAY.name]
    url = environment(objects, gateway)["REDIS_URL"]
    redis = [w for w, _ in workloads(objects) if w["metadata"]["name"] == "redis"]
    if overlay == "production":
        assert not redis
        assert url == {"secretKeyRef": {"name": SECRET, "key": "REDIS_URL"}}
    else:
        assert redis and redis[0]["kind"] == "StatefulSet"
        service = named(objects, "Service", "redis")
        port = service["spec"]["ports"][0]["port"]
        assert url == f"redis://redis:{port}/0"


@needs_kubectl
@overlays()
def test_vllm_serves_production_from_its_volume(rendered: dict[str, list[Obj]],
                                                overlay: str) -> None:
    objects = rendered[overlay]
    _, _, router = stack(objects)["router"]
    env = environment(objects, router)
    vllm = [(w, pod) for w, pod in workloads(objects) if w["metadata"]["name"] == "vllm"]
    if overlay != "production":
        assert not vllm and "VLLM_URL" not in env
        return
    (deployment, pod), = vllm
    container = next(c for c in pod["containers"] if c["name"] == "vllm")
    assert container["image"].startswith("vllm/vllm-openai:")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    own = environment(objects, container)
    values = {k: resolved(objects, v) for k, v in own.items()}
    assert values["VLLM_MODEL"] == env["VLLM_MODEL"]
    # Kubernetes leaves $(NAME) as it is when NAME is not in the container's environment.
    for arg in container["args"]:
        for name in re.findall(r"\$\((\w+)\)", arg):
            assert name in own, f"vllm: {arg} names an unset variable"
    args = " ".join(container["args"])
    for flag, name in (("--model", "VLLM_MODEL"), ("--max-model-len", "MAX_MODEL_LEN"),
                       ("--gpu-memory-utilization", "GPU_MEMORY_UTILIZATION"),
                       ("--tensor-parallel-size", "TENSOR_PARALLEL_SIZE")):
        assert f"{flag}=$({name})" in args
    gpus = int(values["TENSOR_PARALLEL_SIZE"])
    for bound in ("requests", "limits"):
        assert int(container["resources"][bound]["nvidia.com/gpu"]) == gpus
    assert values["HF_HUB_OFFLINE"] == "1"
    for spec in [container, *pod["initContainers"]]:
        hf_home = resolved(objects, environment(objects, spec)["HF_HOME"])
        mount = next(m for m in spec["volumeMounts"] if hf_home.startswith(m["mountPath"] + "/"))
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        named(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    service = named(objects, "Service", "vllm")
    port = port_number(container, service["spec"]["ports"][0]["targetPort"])
    assert env["VLLM_URL"] == f"http://vllm:{service['spec']['ports'][0]['port']}/v1"
    assert f"--port={port}" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
