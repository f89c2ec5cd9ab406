"""Runs the npm grpc-web client (tests/upcoach_llm/gateway/grpcweb_client/chat_stream.ts) from
pytest.

The TypeScript code for the protos is generated once per session into build/ts with the npm buf
and protoc-gen-es; ``make test`` installs them (node_modules/.installed).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.paths import REPO_ROOT

CLIENT_DIR = Path(__file__).parent / "grpcweb_client"
BIN = REPO_ROOT / "node_modules" / ".bin"


def generate_ts() -> None:
    """buf generate with the local protoc-gen-es plugin (offline)."""
    if not (BIN / "tsx").exists() or not (BIN / "protoc-gen-es").exists():
        raise RuntimeError("npm packages missing: run `make node_modules/.installed` "
                           "(npm install) first")
    subprocess.run([str(BIN / "buf"), "generate", "--template",
                    str(CLIENT_DIR / "buf.gen.yaml")], cwd=REPO_ROOT, check=True, timeout=120,
                   env={**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"})


@dataclass
class ClientRun:
    code: int
    lines: list[dict[str, Any]]
    stderr: str

    @property
    def last(self) -> dict[str, Any]:
        return self.lines[-1] if self.lines else {}


async def chat_stream(base_url: str, prompt: str, *args: str, timeout: float = 120) -> ClientRun:
    """Runs the client without blocking the event loop (the gateway under test may share it)."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "tsx"), str(CLIENT_DIR / "chat_stream.ts"), base_url, prompt, *args,
        cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    return ClientRun(process.returncode or 0, lines, err.decode())
