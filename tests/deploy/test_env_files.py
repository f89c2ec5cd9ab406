"""The environment files carry the guide's variables and values, as the containers receive them."""

from __future__ import annotations

import pytest

from tests.deploy.compose_file import ENVIRONMENTS, SECRETS, env_file_keys, resolved
from tests.support.paths import REPO_ROOT

GUIDE_VARIABLES = ["LLM_API_KEY", "VLLM_MODEL", "RATE_LIMIT_RPM", "CACHE_TTL", "LOG_LEVEL",
                   "GATEWAY_PORT", "OLLAMA_PORT", "REDIS_PORT", "GPU_MEMORY_UTILIZATION",
                   "TENSOR_PARALLEL_SIZE", "TLS_ENABLED", "CORS_ORIGINS"]
MODEL = "mistralai/Mistral-7B-Instruct-v0.2"
# The values the guide's "Environment Configuration" shows for each file.
GUIDE_VALUES = {
    "development": {"LLM_API_KEY": "dev-key-local-only", "VLLM_MODEL": MODEL,
                    "RATE_LIMIT_RPM": "120", "CACHE_TTL": "300", "LOG_LEVEL": "debug",
                    "GATEWAY_PORT": "3100", "OLLAMA_PORT": "11434", "REDIS_PORT": "6379"},
    "staging": {"LLM_API_KEY": "stg-xxx-secure-key", "VLLM_MODEL": MODEL,
                "RATE_LIMIT_RPM": "60", "CACHE_TTL": "1800", "LOG_LEVEL": "info",
                "GPU_MEMORY_UTILIZATION": "0.8", "TENSOR_PARALLEL_SIZE": "1"},
    "production": {"LLM_API_KEY": SECRETS["SECRET_LLM_API_KEY"], "VLLM_MODEL": MODEL,
                   "RATE_LIMIT_RPM": "60", "CACHE_TTL": "3600", "LOG_LEVEL": "warn",
                   "GPU_MEMORY_UTILIZATION": "0.9", "TENSOR_PARALLEL_SIZE": "1",
                   "TLS_ENABLED": "true", "CORS_ORIGINS": "https://app.upcoach.com"},
}


def test_example_lists_every_guide_variable_and_the_environment() -> None:
    keys = env_file_keys(REPO_ROOT / ".env.example")
    assert set(GUIDE_VARIABLES) | {"ENVIRONMENT"} <= set(keys)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_file_sets_every_variable_of_the_example(environment: str) -> None:
    keys = env_file_keys(REPO_ROOT / f".env.{environment}")
    missing = set(env_file_keys(REPO_ROOT / ".env.example")) - set(keys)
    assert not missing
    assert len(keys) == len(set(keys)), "a variable is set twice"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_services_receive_the_guides_values(environment: str) -> None:
    env = resolved(environment)["services"]["router"]["environment"]
    assert env["ENVIRONMENT"] == environment
    for key, value in GUIDE_VALUES[environment].items():
        assert env[key] == value, key


def test_production_takes_the_key_from_the_secrets_manager() -> None:
    text = (REPO_ROOT / ".env.production").read_text()
    assert "LLM_API_KEY=${SECRET_LLM_API_KEY}" in text.splitlines()


def test_only_production_turns_tls_on() -> None:
    tls = {e: resolved(e)["services"]["llm-gateway"]["environment"]["TLS_ENABLED"]
           for e in ENVIRONMENTS}
    assert tls == {"development": "false", "staging": "false", "production": "true"}
