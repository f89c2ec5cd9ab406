"""scripts/verify-llm-stack.sh against the real stack (the processes ``make run`` starts).

Green while every part runs (with API keys on, the metrics check needs the operator's key and is
skipped without it); red, naming the part, once a service is stopped.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.paths import REPO_ROOT
from upcoach_llm.dev.ports import free_port
from upcoach_llm.dev.stack import Stack

pytestmark = pytest.mark.integration
CHECKS = ["availability: gateway", "availability: generation", "availability: embedding",
          "availability: router", "availability: model-registry", "availability: redis",
          "models: catalog", "api: chat completions", "api: coaching chat", "api: embeddings",
          "api: metrics", "quality: chat reply", "quality: embeddings", "latency: chat p95"]


API_KEY, ADMIN_KEY = "sk-verify-tenant-0123456789", "sk-verify-operator-0123456789"


def verify(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LLM_API_KEY", "LLM_ADMIN_KEY")}
    return subprocess.run(["bash", "scripts/verify-llm-stack.sh", "--url", url, *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
                          env=env)


def rows(stdout: str) -> dict[str, str]:
    """check name -> PASS / FAIL / SKIP."""
    found = {}
    for line in stdout.splitlines():
        for check in CHECKS:
            rest = line.strip()[len(check):].split()
            if line.strip().startswith(check) and rest and rest[0] in ("PASS", "FAIL", "SKIP"):
                found[check] = rest[0]
    return found


@pytest.fixture(scope="module")
def stack(stack_factory) -> Stack:
    """One stack for the module (the red test stops a part of it last), keys on."""
    return stack_factory(env={"LLM_API_KEY": API_KEY, "LLM_ADMIN_KEY": ADMIN_KEY})


def gateway_url(stack: Stack) -> str:
    return f"http://{stack.spec('gateway').address}"


def test_green_against_the_running_stack(stack: Stack) -> None:
    url = gateway_url(stack)
    result = verify(url, "--runs", "3", "--api-key", API_KEY, "--admin-key", ADMIN_KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert rows(result.stdout) == dict.fromkeys(CHECKS, "PASS")
    assert "OK: " in result.stdout.splitlines()[-1]
    tenant_only = verify(url, "--runs", "1", "--api-key", API_KEY)
    assert tenant_only.returncode == 0, tenant_only.stdout + tenant_only.stderr
    assert rows(tenant_only.stdout) == {**dict.fromkeys(CHECKS, "PASS"), "api: metrics": "SKIP"}
    assert "needs --admin-key" in tenant_only.stdout


def test_red_and_naming_the_service_when_one_is_stopped(stack: Stack) -> None:
    stack.stop(["embedding"])
    result = verify(gateway_url(stack), "--runs", "1", "--api-key", API_KEY)
    assert result.returncode == 1
    assert rows(result.stdout)["availability: embedding"] == "FAIL"
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("FAILED:") and "availability: embedding" in last


def test_red_when_the_gateway_is_unreachable() -> None:
    result = verify(f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    found = rows(result.stdout)
    assert found["availability: gateway"] == "FAIL"
    assert found["api: chat completions"] == "SKIP"
    assert "unreachable" in result.stdout


def test_help_and_bad_usage() -> None:
    usage = subprocess.run(["bash", "scripts/verify-llm-stack.sh", "--help"], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=30, check=False)
    assert usage.returncode == 0 and "--max-latency-ms" in usage.stdout
    bad = subprocess.run(["bash", "scripts/verify-llm-stack.sh", "--runs", "zero"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode == 2 and "--runs" in bad.stderr
