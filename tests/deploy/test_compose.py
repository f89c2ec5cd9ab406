"""docker-compose.yml is valid for every environment and profile, and says what the guide says."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.deploy.compose_file import (
    ENVIRONMENTS,
    PYTHON_SERVICES,
    SECRETS,
    env_file_keys,
    resolved,
    run_compose,
)
from tests.support.paths import REPO_ROOT
from upcoach_llm.api.topology import GATEWAY, GRPC_SERVICES, Service

PROFILE_SETS = [(), ("production",), ("setup",), ("production", "setup")]


@pytest.mark.parametrize("profiles", PROFILE_SETS, ids=lambda p: "+".join(p) or "default")
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_config_is_valid(environment: str, profiles: tuple[str, ...]) -> None:
    result = run_compose("config", "-q", env_file=f".env.{environment}", profiles=profiles,
                         env=SECRETS)
    assert result.returncode == 0, result.stderr
    assert "level=warning" not in result.stderr, result.stderr


@pytest.mark.parametrize("profiles,expected", [
    ((), {"ollama", "redis", *PYTHON_SERVICES}),
    (("production",), {"ollama", "redis", "vllm", *PYTHON_SERVICES}),
    (("setup",), {"ollama", "redis", "model-manager", *PYTHON_SERVICES}),
])
def test_profiles_select_the_guides_services(profiles: tuple[str, ...], expected: set) -> None:
    assert set(resolved("development", profiles)["services"]) == expected


def test_ollama_as_in_the_guide() -> None:
    ollama = resolved("development")["services"]["ollama"]
    assert ollama["image"] == "ollama/ollama:latest"
    assert ollama["container_name"] == "upcoach-ollama"
    assert ollama["environment"] == {"OLLAMA_HOST": "0.0.0.0", "OLLAMA_ORIGINS": "*",
                                     "OLLAMA_NUM_PARALLEL": "4", "OLLAMA_MAX_LOADED_MODELS": "2"}
    assert published(ollama) == [("127.0.0.1", 11434, "11434")]


def test_the_guides_ollama_tuning_reaches_ollama_and_the_stack() -> None:
    """OLLAMA_NUM_PARALLEL and OLLAMA_MAX_LOADED_MODELS tune the Ollama server; OLLAMA_KEEP_ALIVE
    goes with every request the router and generation send it."""
    tuning = {"OLLAMA_NUM_PARALLEL": "8", "OLLAMA_MAX_LOADED_MODELS": "3",
              "OLLAMA_KEEP_ALIVE": "60m"}
    result = run_compose("config", "--format", "json", env_file=".env.development",
                         env={**SECRETS, **tuning})
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    ollama = services["ollama"]["environment"]
    assert (ollama["OLLAMA_NUM_PARALLEL"], ollama["OLLAMA_MAX_LOADED_MODELS"]) == ("8", "3")
    for name in ("router", "generation"):
        assert services[name]["environment"]["OLLAMA_KEEP_ALIVE"] == "60m"


def test_vllm_as_in_the_guide_with_a_gpu_reservation() -> None:
    vllm = resolved("production", ("production",))["services"]["vllm"]
    assert vllm["image"] == "vllm/vllm-openai:latest"
    assert published(vllm) == [("127.0.0.1", 8000, "8000")]
    assert vllm["environment"]["MODEL_NAME"] == "mistralai/Mistral-7B-Instruct-v0.2"
    assert vllm["environment"]["MAX_MODEL_LEN"] == "4096"
    assert vllm["environment"]["GPU_MEMORY_UTILIZATION"] == "0.9"
    assert "--model=mistralai/Mistral-7B-Instruct-v0.2" in vllm["command"]
    assert "--gpu-memory-utilization=0.9" in vllm["command"]
    device = vllm["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


def test_vllm_follows_the_staging_gpu_settings() -> None:
    vllm = resolved("staging", ("production",))["services"]["vllm"]
    assert "--gpu-memory-utilization=0.8" in vllm["command"]
    assert vllm["environment"]["GPU_MEMORY_UTILIZATION"] == "0.8"


def test_redis_runs_the_guides_exact_command() -> None:
    redis = resolved("development")["services"]["redis"]
    assert redis["image"] == "redis:7-alpine"
    assert " ".join(redis["command"]) == (
        "redis-server --appendonly yes --maxmemory 256mb --maxmemory-policy allkeys-lru")


@pytest.mark.parametrize("service", GRPC_SERVICES, ids=lambda s: s.name)
def test_grpc_services_run_and_listen_as_the_topology_says(service: Service) -> None:
    compose = resolved("development")["services"][service.name]
    assert compose["command"] == [service.script]
    assert compose["healthcheck"]["test"] == ["CMD", "upcoach-health-probe", service.local_address]
    assert compose["environment"][service.port_env] == str(service.port)
    assert compose["environment"][service.addr_env] == f"{service.name}:{service.port}"


def test_gateway_on_3100_probed_on_readyz() -> None:
    gateway = resolved("development")["services"]["llm-gateway"]
    assert GATEWAY.port == 3100
    assert gateway["command"] == [GATEWAY.script]
    assert gateway["environment"][GATEWAY.port_env] == str(GATEWAY.port)
    assert [(p["target"], p["published"]) for p in gateway["ports"]] == [(3100, "3100")]
    assert gateway["healthcheck"]["test"] == ["CMD", "python", "scripts/http_probe.py", "/readyz"]
    assert (REPO_ROOT / "scripts/http_probe.py").is_file()


def test_every_dependency_waits_for_health() -> None:
    services = resolved("production", ("production", "setup"))["services"]
    edges = [(name, target, rule) for name, service in services.items()
             for target, rule in (service.get("depends_on") or {}).items()]
    assert edges
    assert all(rule["condition"] == "service_healthy" for _, _, rule in edges), edges
    assert {t for n, t, _ in edges if n == "llm-gateway"} == {
        "router", "embedding", "model-registry", "generation", "redis"}
    assert services["generation"]["depends_on"]["vllm"]["required"] is False


def test_model_manager_runs_setup_models_against_ollama() -> None:
    manager = resolved("development", ("setup",))["services"]["model-manager"]
    assert manager["command"][:2] == ["python", "scripts/setup_models.py"]
    assert "http://ollama:11434" in manager["command"]
    assert manager["depends_on"] == {"ollama": {"condition": "service_healthy", "required": True}}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_python_service_gets_every_env_file_variable(environment: str) -> None:
    services = resolved(environment, ("setup",))["services"]
    keys = env_file_keys(REPO_ROOT / ".env.example")
    for name in (*PYTHON_SERVICES, "model-manager"):
        missing = [k for k in keys if k not in services[name]["environment"]]
        assert not missing, f"{name} lacks {missing}"
        assert services[name]["environment"]["ENVIRONMENT"] == environment


def test_service_wiring_addresses() -> None:
    env = resolved("development")["services"]["llm-gateway"]["environment"]
    assert {s.addr_env: env[s.addr_env] for s in GRPC_SERVICES} == {
        "GENERATION_ADDR": "generation:50051", "EMBEDDING_ADDR": "embedding:50052",
        "MODEL_REGISTRY_ADDR": "model-registry:50053", "ROUTER_ADDR": "router:50054"}
    assert env["OLLAMA_URL"] == "http://ollama:11434"
    assert env["REDIS_URL"] == "redis://redis:6379/0"


def test_python_services_share_one_image_built_from_the_dockerfile() -> None:
    services = resolved("development", ("setup",))["services"]
    images = {services[n]["image"] for n in (*PYTHON_SERVICES, "model-manager")}
    assert images == {"upcoach-llm:latest"}
    assert all(services[n]["build"]["dockerfile"] == "Dockerfile" for n in PYTHON_SERVICES)


def test_commands_name_modules_and_files_that_exist() -> None:
    services = resolved("development", ("setup",))["services"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name in (*PYTHON_SERVICES, "model-manager"):
        command = services[name]["command"]
        if command[0] == "python":
            assert (REPO_ROOT / command[1]).is_file(), f"{name}: {command}"
        else:
            assert command[0] in scripts, f"{name}: {command}"


# -- the check can fail --------------------------------------------------------------------------

def test_without_an_env_file_compose_names_the_missing_variable() -> None:
    result = run_compose("config", "-q", env={"LLM_API_KEY": "k",
                                              "INTERNAL_TOKEN": SECRETS["INTERNAL_TOKEN"]})
    assert result.returncode != 0
    assert "ENVIRONMENT is not set" in result.stderr


def test_production_without_the_secret_names_llm_api_key() -> None:
    result = run_compose("config", "-q", env_file=".env.production",
                         env={"INTERNAL_TOKEN": SECRETS["INTERNAL_TOKEN"]})
    assert result.returncode != 0
    assert "LLM_API_KEY is not set" in result.stderr


def test_an_undefined_dependency_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    broken.write_text(text.replace("      redis:\n        condition: service_healthy",
                                   "      rediss:\n        condition: service_healthy"))
    assert broken.read_text() != text
    result = run_compose("config", "-q", env_file=str(REPO_ROOT / ".env.development"),
                         file=broken, env=SECRETS)
    assert result.returncode != 0
    assert "rediss" in result.stderr


# -- the trust boundary ------------------------------------------------------------------------

def published(service: dict) -> list[tuple[str, int, str]]:
    """A compose service's published ports as (host address, container port, host port)."""
    return [(p.get("host_ip", ""), p["target"], p["published"]) for p in service.get("ports", [])]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_only_the_gateway_is_published_beyond_the_hosts_loopback(environment: str) -> None:
    """Redis, Ollama and vLLM take no credentials: other hosts must not reach them."""
    services = resolved(environment, ("production", "setup"))["services"]
    exposed = {name: ports for name, service in services.items()
               if (ports := [p for p in published(service) if p[0] != "127.0.0.1"])}
    assert set(exposed) == {"llm-gateway"}, exposed
    assert {"ollama", "redis"} <= {name for name, s in services.items() if published(s)}


def test_grpc_services_publish_no_port_and_need_the_internal_token() -> None:
    services = resolved("production", ("production",))["services"]
    for name in (s.name for s in GRPC_SERVICES):
        assert not services[name].get("ports"), f"{name} is published on the host"
        assert services[name]["environment"]["INTERNAL_TOKEN"] == SECRETS["INTERNAL_TOKEN"]
    assert services["llm-gateway"]["environment"]["INTERNAL_TOKEN"] == SECRETS["INTERNAL_TOKEN"]


def test_only_the_services_with_admin_rpcs_get_the_admin_token() -> None:
    services = resolved("development")["services"]
    holders = {n for n in PYTHON_SERVICES if "INTERNAL_ADMIN_TOKEN" in services[n]["environment"]}
    assert holders == {"embedding", "model-registry"}


def test_without_the_internal_token_compose_names_it() -> None:
    result = run_compose("config", "-q", env_file=".env.development")
    assert result.returncode != 0
    assert "INTERNAL_TOKEN is not set" in result.stderr
