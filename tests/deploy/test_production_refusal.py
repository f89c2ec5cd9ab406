"""The gateway, given what compose passes it from .env.production, refuses a weak configuration.

Each case starts the real ``python -m upcoach_llm.gateway`` with the container's environment
(resolved by the
Compose binary from .env.production) and one variable spoiled: it must exit non-zero with one line
naming that variable. The control case, a real key and a real certificate, starts and serves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy.compose_file import resolved
from tests.support.paths import REPO_ROOT
from upcoach_llm.dev.ports import free_port


def production_env(**overrides: str) -> dict[str, str]:
    env = dict(resolved("production")["services"]["llm-gateway"]["environment"])
    env.update(GATEWAY_PORT=str(free_port()), REDIS_URL="redis://127.0.0.1:6379/0",
               PATH=os.environ["PATH"], **overrides)
    return env


def start_gateway(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "upcoach_llm.gateway"], cwd=REPO_ROOT, env=env,
    text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("overrides,variable,reason", [
    ({"LLM_API_KEY": ""}, "LLM_API_KEY", "must be set"),
    ({"LLM_API_KEY": "dev-key-local-only"}, "LLM_API_KEY", "development key"),
    ({"LLM_API_KEY": "${SECRET_LLM_API_KEY}"}, "LLM_API_KEY", "development key"),
    ({"LLM_API_KEY": "prod-0123456789abcdef,k3y"}, "LLM_API_KEY", "at least 16 characters"),
    ({"TLS_ENABLED": "false"}, "TLS_ENABLED", "must be true"),
    ({}, "TLS_CERT_FILE", "not a readable file"),
], ids=["missing-key", "dev-key", "unresolved-secret", "short-key", "tls-off", "no-certificate"])
def test_refuses_and_names_the_variable(overrides: dict, variable: str, reason: str) -> None:
    process = start_gateway(production_env(**overrides))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert variable in lines[0] and reason in lines[0]


def test_a_real_key_and_certificate_start_the_gateway_over_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    env = production_env(TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(key))
    process = start_gateway(env)
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"https://127.0.0.1:{env['GATEWAY_PORT']}/health",
                                   verify=False, timeout=2).status_code
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert process.poll() is None, process.communicate()[1]
        assert status is not None
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=40)
