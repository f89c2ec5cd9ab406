"""The two distributions install on their own, each into a new virtualenv, as another team would.

``pip install .`` gives the server: its packages, its catalogs and its console commands, and not
the client. ``pip install clients/python`` gives the client: ``upcoach_client`` and nothing of
the server (``upcoach_llm``, llama.cpp, the repository's folders), and that venv's Python chats
with a real stack. Both builds generate their ``api`` package from protos/ in their own build
environment (pip's build isolation), so nothing generated in the checkout is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.integration
SERVER_COMMANDS = ("upcoach-generation", "upcoach-embedding", "upcoach-model-registry",
                   "upcoach-router", "upcoach-gateway", "upcoach-health-probe", "upcoach-stack")


def new_venv(folder: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(folder)
    return folder / "bin" / "python"


def pip_install(python: Path, *args: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=1200, check=False,
                          cwd="/", env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]


def run_python(python: Path, code: str, **env: str) -> dict:
    """Runs code outside the checkout (so nothing is imported from it); it prints one JSON."""
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300,
                          check=False, cwd="/", env={**os.environ, "PYTHONPATH": "", **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


IMPORTABLE = """
import importlib.util, json
names = ["upcoach_llm", "upcoach_client", "services", "gateway", "bench", "tests", "llama_cpp"]
print(json.dumps({n: importlib.util.find_spec(n) is not None for n in names}))
"""


def test_the_server_installs_alone_with_its_catalogs_and_commands(tmp_path: Path) -> None:
    python = new_venv(tmp_path / "server")
    pip_install(python, str(REPO_ROOT))
    found = run_python(python, IMPORTABLE)
    assert found == {"upcoach_llm": True, "upcoach_client": False, "services": False,
                     "gateway": False, "bench": False, "tests": False, "llama_cpp": True}
    loaded = run_python(python, """
import json
import upcoach_llm
from upcoach_llm.common.catalog import load_models
from upcoach_llm.api import router_pb2_grpc, router_connect, names
import upcoach_llm.gateway.app, upcoach_llm.router.service
print(json.dumps({"site": upcoach_llm.__file__, "models": len(load_models().models),
                  "modes": list(names.INFERENCE_MODES)}))
""")
    assert "site-packages" in loaded["site"] and loaded["models"] > 0
    assert loaded["modes"][0] == "serverOnly"
    for command in SERVER_COMMANDS:
        assert (python.parent / command).is_file(), command
    helped = subprocess.run([str(python.parent / "upcoach-stack"), "--help"], capture_output=True,
                            text=True, timeout=60, check=False, cwd="/")
    assert helped.returncode == 0 and "--only" in helped.stdout


def test_the_client_installs_alone_and_chats_with_a_real_stack(tmp_path: Path,
                                                               stack_factory) -> None:
    python = new_venv(tmp_path / "client")
    pip_install(python, str(REPO_ROOT / "clients" / "python"))
    found = run_python(python, IMPORTABLE)
    assert found == {"upcoach_llm": False, "upcoach_client": True, "services": False,
                     "gateway": False, "bench": False, "tests": False, "llama_cpp": False}
    installed = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"],
                               capture_output=True, text=True, timeout=60, check=True)
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert {"grpcio", "grpcio-status", "protobuf", "upcoach-client"} <= names
    assert not names & {"upcoach-llm", "llama-cpp-python", "pydantic", "fastapi", "pyyaml"}

    stack = stack_factory(["generation", "embedding", "model-registry", "router"],
                          env={"GENERATION_PARALLEL": "1"})
    reply = run_python(python, """
import json
from upcoach_client import HybridClient, OnDeviceModel, ServerAddresses, UpcoachClient
addresses = ServerAddresses.from_env()
with UpcoachClient(addresses) as client:
    chat = client.chat([("user", "One tip for better sleep?")], max_tokens=8, temperature=0)
    vectors = client.embed(["morning routine"]).vectors
with HybridClient(addresses, "auto") as hybrid:
    decided = hybrid.decide("Quick tip for focus?")
device = OnDeviceModel().available
print(json.dumps({"text": chat.text, "backend": chat.route.backend, "dims": len(vectors[0]),
                  "decided": decided.target, "reason": decided.reason, "device": device}))
""", ROUTER_ADDR=stack.spec("router").address, EMBEDDING_ADDR=stack.spec("embedding").address,
        MODEL_REGISTRY_ADDR=stack.spec("model-registry").address,
        INTERNAL_TOKEN=stack.env["INTERNAL_TOKEN"])
    assert reply["text"] and reply["backend"] == "embedded" and reply["dims"] == 384
    # Without the on-device extra there is no device model; the router still decides, with the
    # policy only the server holds (auto: a short, simple prompt goes to the device, as the guide
    # says).
    assert reply["device"] is False
    assert reply["decided"] == "on_device" and reply["reason"].startswith("auto: short (")


def test_the_client_stays_a_stranger_to_the_server_in_the_checkout() -> None:
    client_root = REPO_ROOT / "clients" / "python" / "upcoach_client"
    for path in client_root.rglob("*.py"):
        if "api" in path.relative_to(client_root).parts:
            continue
        text = path.read_text()
        assert "upcoach_llm" not in text and "import services" not in text, path
