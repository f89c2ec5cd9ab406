"""A small synchronous client for Ollama's model-management API, used by setup_models.py.

It follows Ollama's documented API (docs/api.md): ``/api/version``, ``/api/tags``, streamed
``/api/pull`` and ``/api/create`` (NDJSON status lines ending in ``success``), and one-shot
``/api/chat`` and ``/api/embed`` to check that a model answers. Every failure becomes an
``OllamaError`` whose message says what went wrong in one line: unreachable server, an error
object from Ollama, a malformed line, or a stream that stopped before ``success``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

Progress = Callable[[dict[str, Any]], None]


class OllamaError(Exception):
    """Ollama answered with an error, or not in the documented way."""


class OllamaUnreachable(OllamaError):
    """Nothing answers at the URL."""


def canonical(name: str) -> str:
    """Ollama's form of a model name: the tag is always there (``mistral`` → ``mistral:latest``)."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class OllamaClient:
    """One Ollama server; ``timeout`` is the longest wait for the next byte of a reply."""

    def __init__(self, base_url: str, timeout: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url,
                                  timeout=httpx.Timeout(timeout, connect=5.0))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OllamaClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def version(self) -> str:
        return str(self._request("GET", "/api/version", None, "asking its version")["version"])

    def tags(self) -> dict[str, int]:
        """Installed models: canonical name → size in bytes."""
        reply = self._request("GET", "/api/tags", None, "listing models")
        return {canonical(m["name"]): int(m.get("size") or 0) for m in reply.get("models", [])}

    def pull(self, name: str, on_progress: Progress) -> None:
        self._stream("/api/pull", {"model": name, "stream": True}, on_progress, f"pull of {name}")

    def create(self, name: str, base: str, system: str, parameters: dict[str, Any],
               on_progress: Progress) -> None:
        body = {"model": name, "from": base, "system": system, "parameters": parameters,
                "stream": True}
        self._stream("/api/create", body, on_progress, f"create of {name}")

    def chat(self, model: str, prompt: str, max_tokens: int = 32) -> str:
        body = {"model": model, "stream": False, "options": {"num_predict": max_tokens},
                "messages": [{"role": "user", "content": prompt}]}
        reply = self._request("POST", "/api/chat", body, f"chat with {model}")
        return str((reply.get("message") or {}).get("content") or "")

    def embed(self, model: str, text: str) -> list[float]:
        reply = self._request("POST", "/api/embed", {"model": model, "input": text},
                              f"embedding with {model}")
        vectors = reply.get("embeddings") or [[]]
        return list(vectors[0])

    # -- transport -----------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict | None, what: str) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, what) from None
        if response.status_code != 200:
            raise OllamaError(f"{what}: HTTP {response.status_code}: {_error_text(response.text)}")
        payload = _json(response.text, what)
        if isinstance(payload, dict) and "error" in payload:
            raise OllamaError(f"{what}: {payload['error']}")
        return payload if isinstance(payload, dict) else {}

    def _stream(self, path: str, body: dict, on_progress: Progress, what: str) -> None:
        finished = False
        try:
            with self._http.stream("POST", path, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise OllamaError(f"{what}: HTTP {response.status_code}: "
                                      f"{_error_text(response.text)}")
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    status = _json(line, what)
                    if not isinstance(status, dict):
                        raise OllamaError(f"{what}: unexpected line from Ollama: {line[:120]!r}")
                    if "error" in status:
                        raise OllamaError(f"{what}: {status['error']}")
                    on_progress(status)
                    finished = status.get("status") == "success"
        except httpx.RemoteProtocolError:
            raise OllamaError(f"{what}: Ollama closed the connection mid-stream") from None
        except httpx.TransportError as exc:
            raise self._transport_error(exc, what) from None
        if not finished:
            raise OllamaError(f"{what}: the stream ended before Ollama reported success")

    def _transport_error(self, exc: httpx.TransportError, what: str) -> OllamaError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return OllamaUnreachable(f"cannot reach Ollama at {self.base_url} ({exc or 'refused'})")
        if isinstance(exc, httpx.TimeoutException):
            return OllamaError(f"{what}: Ollama did not answer in time (raise --timeout)")
        return OllamaError(f"{what}: {type(exc).__name__}: {exc}")


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise OllamaError(f"{what}: malformed reply from Ollama: {text.strip()[:120]!r}") from None


def _error_text(text: str) -> str:
    """Ollama's {"error": ...} message, or the start of whatever else the body holds."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:200] or "(empty body)"
    if isinstance(payload, dict) and "error" in payload:
        return str(payload["error"])
    return text.strip()[:200]
