"""A contract double of the Ollama HTTP API for tests: Ollama's server cannot run on these machines.

It is a real HTTP server on a free loopback port (stdlib ``ThreadingHTTPServer`` in a thread) that
follows Ollama's documented API (docs/api.md in the ollama repository): the same paths, request
fields, NDJSON streaming, final statistics and error objects. Replies are canned and deterministic:
it is a contract double, not a model.

    with OllamaDouble(installed=["mistral"]) as ollama:
        httpx.post(f"{ollama.url}/api/chat", json={...})

Endpoints: ``GET /`` ("Ollama is running"), ``GET /api/version``, ``GET /api/tags``,
``GET /api/ps``, ``POST /api/show``, ``POST /api/pull``, ``POST /api/create``,
``DELETE /api/delete``, ``POST /api/chat``, ``POST /api/generate``, ``POST /api/embed``.

Behaviour worth knowing:
- Model names are normalised like Ollama's: ``mistral`` is ``mistral:latest``.
- ``/api/chat``, ``/api/generate`` and ``/api/embed`` on a model that is not installed answer
  404 ``{"error": "model \\"x\\" not found, try pulling it first"}``.
- ``/api/pull`` streams ``pulling manifest``, per-layer ``pulling <digest>`` rows with ``digest``,
  ``total`` and ``completed``, ``verifying sha256 digest``, ``writing manifest``, ``success``; a
  name not in ``library`` streams ``pulling manifest`` then ``{"error": ...}`` (HTTP 200, as
  Ollama does once the stream has begun), or answers 500 with ``stream: false``.
- ``/api/create`` takes the current form (``from``, ``system``, ``parameters``) and the older
  ``modelfile`` text; the base model must be installed.
- The chat reply is ``reply`` (a string, or a function of the messages); it streams one word per
  chunk; ``options.num_predict`` caps the chunk count and sets ``done_reason`` to ``length``.
- ``format`` (``/api/chat``, ``/api/generate``): ``"json"`` makes the reply the JSON object
  ``{"reply": <reply>}``; a JSON schema object (Ollama 0.5+) makes it an instance of the schema
  (each property of an object schema with a value of its type, strings the reply); anything else
  answers 400. Like Ollama 0.6, the double knows no ``logprobs``.
- Embeddings are hashed bags of words, L2-normalised, ``embedding_dim`` long: texts sharing words
  score a higher cosine than unrelated ones, and the same text always gives the same vector.

Knobs for failure tests (all thread-safe, each fault used once unless said otherwise):
- ``fail_next(status=500, error="...", path=None, times=1)``: the next request(s), optionally
  only those to ``path``, answer ``status`` with ``{"error": error}``.
- ``cut_next_stream(after=N)``: the next streamed reply drops the connection after N lines,
  without the final chunk (a crashed server).
- ``malformed_next_stream(after=N)``: the next streamed reply writes a line that is not JSON
  after N lines, then goes on.
- ``error_next_stream(after=N, error="...")``: the next streamed reply writes ``{"error": ...}``
  after N lines and ends there (how Ollama reports a failure once a stream has begun).
- ``chunk_delay``: seconds between streamed lines (all streams); ``response_delay``: seconds
  before any reply (all requests).
- ``requests``: every request received, as ``RecordedRequest(method, path, body)``.
- ``aborted_streams``: streamed replies the client hung up on before their last line (a client
  that stops reading, e.g. a cancelled call, shows up here once the double's next write fails).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERSION = "0.6.2"
DEFAULT_REPLY = ("Start small: pick one habit, attach it to something you already do every day, "
                 "and track it for two weeks. Consistency beats intensity.")
# name -> bytes on disk, as Ollama's library lists them (approximately).
DEFAULT_LIBRARY = {
    "mistral:latest": 4_113_301_824,
    "llama3.2:3b": 2_019_393_189,
    "llama3.2:latest": 2_019_393_189,
    "nomic-embed-text:latest": 274_302_450,
    "all-minilm:latest": 45_960_996,
    "smollm2:135m": 270_898_672,
}
_EMBED_HINTS = ("embed", "minilm", "bge", "e5-")

Reply = str | Callable[[list[dict[str, Any]]], str]


def canonical(name: str) -> str:
    """Ollama's normalised name: the tag is always there (``mistral`` → ``mistral:latest``)."""
    name = name.strip()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _digest(*parts: str) -> str:
    return "sha256:" + hashlib.sha256("/".join(parts).encode()).hexdigest()


@dataclass
class InstalledModel:
    """A model in the double's local store."""

    name: str
    size: int
    digest: str
    modified_at: str
    parent: str = ""
    system: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def is_embedding(self) -> bool:
        return any(hint in self.name for hint in _EMBED_HINTS)

    @property
    def family(self) -> str:
        return "bert" if self.is_embedding else "llama"

    def details(self) -> dict[str, Any]:
        return {"parent_model": self.parent, "format": "gguf", "family": self.family,
                "families": [self.family], "parameter_size": "7B", "quantization_level": "Q4_0"}

    def tag_entry(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.name, "modified_at": self.modified_at,
                "size": self.size, "digest": self.digest.removeprefix("sha256:"),
                "details": self.details()}

    def modelfile(self) -> str:
        lines = [f"FROM {self.parent or self.name}"]
        if self.system:
            lines.append(f'SYSTEM """{self.system}"""')
        lines += [f"PARAMETER {k} {v}" for k, v in self.parameters.items()]
        return "\n".join(lines) + "\n"


@dataclass
class RecordedRequest:
    """One request the double received."""

    method: str
    path: str
    body: Any


@dataclass
class _Failure:
    status: int
    error: str
    path: str | None
    times: int


class _HttpError(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class _DropConnection(Exception):
    """Raised inside a stream to close the socket without finishing the reply."""


class OllamaDouble:
    """The double's state and knobs; ``start()`` serves it, ``stop()`` shuts it down."""

    def __init__(self, installed: Iterable[str] = (), *, library: dict[str, int] | None = None,
                 reply: Reply = DEFAULT_REPLY, embedding_dim: int = 768,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.library = {canonical(k): v for k, v in (library or DEFAULT_LIBRARY).items()}
        self.reply = reply
        self.embedding_dim = embedding_dim
        self.chunk_delay = 0.0
        self.response_delay = 0.0
        self.requests: list[RecordedRequest] = []
        self.aborted_streams = 0
        self.models: dict[str, InstalledModel] = {}
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._cut_after: int | None = None
        self._malformed_after: int | None = None
        self._error_after: tuple[int, str] | None = None
        for name in installed:
            self.install(name)
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> OllamaDouble:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="ollama-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> OllamaDouble:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- knobs -----------------------------------------------------------------------------

    def install(self, name: str, *, size: int | None = None, parent: str = "", system: str = "",
                parameters: dict[str, Any] | None = None) -> InstalledModel:
        """Puts a model in the local store, as if it had been pulled or created."""
        name = canonical(name)
        model = InstalledModel(name=name, size=size or self.library.get(name, 1_000_000),
                               digest=_digest("model", name), modified_at=_now(),
                               parent=parent, system=system, parameters=dict(parameters or {}))
        with self._lock:
            self.models[name] = model
        return model

    def installed(self) -> list[str]:
        with self._lock:
            return sorted(self.models)

    def fail_next(self, status: int = 500, error: str = "internal error", *,
                  path: str | None = None, times: int = 1) -> None:
        with self._lock:
            self._failures.append(_Failure(status, error, path, times))

    def cut_next_stream(self, after: int) -> None:
        with self._lock:
            self._cut_after = after

    def malformed_next_stream(self, after: int) -> None:
        with self._lock:
            self._malformed_after = after

    def error_next_stream(self, after: int, error: str = "an error was encountered") -> None:
        with self._lock:
            self._error_after = (after, error)

    def paths(self) -> list[str]:
        """The paths of the requests received so far, in order."""
        return [r.path for r in self.requests]

    # -- used by the handler ---------------------------------------------------------------

    def _take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.path is None or failure.path == path:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    return failure
        return None

    def _take_stream_faults(self) -> tuple[int | None, int | None, tuple[int, str] | None]:
        with self._lock:
            faults = (self._cut_after, self._malformed_after, self._error_after)
            self._cut_after = self._malformed_after = self._error_after = None
        return faults

    def _require(self, name: Any) -> InstalledModel:
        if not isinstance(name, str) or not name.strip():
            raise _HttpError(400, "model is required")
        with self._lock:
            model = self.models.get(canonical(name))
        if model is None:
            raise _HttpError(404, f'model "{name}" not found, try pulling it first')
        return model

    def _reply_text(self, messages: list[dict[str, Any]]) -> str:
        return self.reply(messages) if callable(self.reply) else self.reply

    def embed(self, text: str) -> list[float]:
        """The double's deterministic embedding of one text."""
        vector = [0.0] * self.embedding_dim
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            bucket = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big")
            vector[bucket % self.embedding_dim] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [round(v / norm, 8) for v in vector]


# -- the endpoints --------------------------------------------------------------------------

def _stats(prompt_tokens: int, eval_tokens: int) -> dict[str, int]:
    return {"total_duration": 5_000_000 + 1_000_000 * eval_tokens, "load_duration": 1_000_000,
            "prompt_eval_count": prompt_tokens, "prompt_eval_duration": 100_000 * prompt_tokens,
            "eval_count": eval_tokens, "eval_duration": 1_000_000 * eval_tokens}


def _words(text: str) -> list[str]:
    """Splits text into stream pieces that concatenate back to it exactly."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def _chat(double: OllamaDouble, body: dict[str, Any]) -> tuple[bool, Iterator[dict] | dict]:
    model = double._require(body.get("model"))
    if model.is_embedding:
        raise _HttpError(400, f'"{model.name}" does not support chat')
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _HttpError(400, "messages must be a list")
    name = body["model"]
    if not messages:
        return False, {"model": name, "created_at": _now(),
                       "message": {"role": "assistant", "content": ""},
                       "done_reason": "load", "done": True}
    system = model.system
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
    prompt_tokens += len(system.split())
    pieces = _words(_formatted(double._reply_text(messages), body.get("format")))
    limit = (body.get("options") or {}).get("num_predict")
    reason = "stop"
    if isinstance(limit, int) and 0 <= limit < len(pieces):
        pieces, reason = pieces[:limit], "length"
    final = {"model": name, "created_at": _now(), "done": True, "done_reason": reason,
             **_stats(prompt_tokens, len(pieces))}
    if body.get("stream") is False:
        final["message"] = {"role": "assistant", "content": "".join(pieces)}
        return False, final

    def chunks() -> Iterator[dict]:
        for piece in pieces:
            yield {"model": name, "created_at": _now(),
                   "message": {"role": "assistant", "content": piece}, "done": False}
        yield {**final, "message": {"role": "assistant", "content": ""}}

    return True, chunks()


def _formatted(reply: str, format_: Any) -> str:
    """The reply in the shape ``format`` asks for: as it is, ``{"reply": ...}`` for "json", or
    an instance of a JSON schema."""
    if format_ is None or format_ == "":
        return reply
    if format_ == "json":
        return json.dumps({"reply": reply})
    if not isinstance(format_, dict):
        raise _HttpError(400, f"invalid format: {json.dumps(format_)!s} is neither \"json\" nor "
                              "a JSON schema")
    return json.dumps(_instance(format_, reply))


def _instance(schema: dict[str, Any], reply: str) -> Any:
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: _instance(sub if isinstance(sub, dict) else {}, reply)
                for name, sub in (schema.get("properties") or {}).items()}
    values = {"string": reply, "integer": 1, "number": 1.5, "boolean": True, "array": [],
              "null": None}
    return values.get(kind, reply) if isinstance(kind, str) else reply


def _generate(double: OllamaDouble, body: dict[str, Any]) -> tuple[bool, Iterator[dict] | dict]:
    prompt = body.get("prompt", "")
    messages = [{"role": "user", "content": prompt}] if prompt else []
    streamed, result = _chat(double, {**body, "messages": messages})
    if not streamed:
        assert isinstance(result, dict)
        result["response"] = result.pop("message", {}).get("content", "")
        return False, result

    def chunks() -> Iterator[dict]:
        for chunk in result:  # type: ignore[union-attr]
            chunk["response"] = chunk.pop("message", {}).get("content", "")
            yield chunk

    return True, chunks()


def _embed(double: OllamaDouble, body: dict[str, Any]) -> dict:
    double._require(body.get("model"))
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise _HttpError(400, "input must be a string or a list of strings")
    tokens = sum(len(t.split()) for t in texts)
    return {"model": body["model"], "embeddings": [double.embed(t) for t in texts],
            "total_duration": 1_000_000 * (len(texts) + 1), "load_duration": 100_000,
            "prompt_eval_count": tokens}


def _pull(double: OllamaDouble, body: dict[str, Any]) -> tuple[bool, Iterator[dict] | dict]:
    raw = body.get("model") or body.get("name")
    if not isinstance(raw, str) or not raw.strip():
        raise _HttpError(400, "model is required")
    name = canonical(raw)
    size = double.library.get(name)
    if body.get("stream") is False:
        if size is None:
            raise _HttpError(500, "pull model manifest: file does not exist")
        double.install(name)
        return False, {"status": "success"}
    layers = [] if size is None else [
        (_digest("layer", name, "weights"), max(size - 1500, 1)),
        (_digest("layer", name, "template"), 1000), (_digest("layer", name, "params"), 500)]

    def progress() -> Iterator[dict]:
        yield {"status": "pulling manifest"}
        if size is None:
            yield {"error": "pull model manifest: file does not exist"}
            return
        for digest, total in layers:
            status = f"pulling {digest[7:19]}"
            yield {"status": status, "digest": digest, "total": total}
            for step in (1, 2, 3, 4):
                yield {"status": status, "digest": digest, "total": total,
                       "completed": total * step // 4}
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        double.install(name)
        yield {"status": "success"}

    return True, progress()


_MODELFILE_LINE = re.compile(r"^(FROM|SYSTEM|PARAMETER)\s+(.*)$", re.IGNORECASE)


def _parse_modelfile(text: str) -> dict[str, Any]:
    """The FROM, SYSTEM and PARAMETER instructions of a Modelfile (enough for the double)."""
    result: dict[str, Any] = {"parameters": {}}
    text = re.sub(r'"""(.*?)"""', lambda m: json.dumps(m.group(1)), text, flags=re.DOTALL)
    for line in text.splitlines():
        match = _MODELFILE_LINE.match(line.strip())
        if not match:
            continue
        keyword, value = match.group(1).upper(), match.group(2).strip()
        if keyword == "FROM":
            result["from"] = value
        elif keyword == "SYSTEM":
            result["system"] = json.loads(value) if value.startswith('"') else value
        else:
            key, _, param = value.partition(" ")
            result["parameters"][key] = param.strip()
    return result


def _create(double: OllamaDouble, body: dict[str, Any]) -> tuple[bool, Iterator[dict] | dict]:
    name = body.get("model") or body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _HttpError(400, "model is required")
    spec = dict(body)
    if isinstance(body.get("modelfile"), str):
        spec = {**_parse_modelfile(body["modelfile"]), **{k: v for k, v in body.items()
                                                          if k in ("from", "system")}}
    base_name = spec.get("from")
    if not isinstance(base_name, str) or not base_name:
        raise _HttpError(400, "neither 'from' or 'files' was specified")
    base = double._require(base_name)
    system = spec.get("system") or base.system
    parameters = spec.get("parameters") or {}

    def finish() -> None:
        double.install(name, size=base.size, parent=base.name, system=system,
                       parameters=parameters)

    if body.get("stream") is False:
        finish()
        return False, {"status": "success"}

    def progress() -> Iterator[dict]:
        yield {"status": "reading model metadata"}
        yield {"status": f"using existing layer {base.digest}"}
        if system:
            yield {"status": "creating system layer"}
            yield {"status": f"creating new layer {_digest('system', system)}"}
        if parameters:
            yield {"status": f"creating new layer {_digest('params', json.dumps(parameters))}"}
        yield {"status": "writing manifest"}
        finish()
        yield {"status": "success"}

    return True, progress()


def _show(double: OllamaDouble, body: dict[str, Any]) -> dict:
    model = double._require(body.get("model") or body.get("name"))
    return {"modelfile": model.modelfile(), "system": model.system,
            "parameters": "\n".join(f"{k} {v}" for k, v in model.parameters.items()),
            "template": "{{ .System }}\n{{ .Prompt }}", "details": model.details(),
            "model_info": {"general.architecture": model.family}, "modified_at": model.modified_at}


def _delete(double: OllamaDouble, body: dict[str, Any]) -> dict:
    model = double._require(body.get("model") or body.get("name"))
    with double._lock:
        del double.models[model.name]
    return {}


def _handler_for(double: OllamaDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ollama-double"

        def log_message(self, *_: Any) -> None:
            return

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_HEAD(self) -> None:
            self._dispatch("HEAD")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _read_body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return {}
            try:
                return json.loads(raw)
            except json.JSONDecodeError as exc:
                raise _HttpError(400, f"invalid JSON: {exc}") from None

        def _dispatch(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            try:
                body = self._read_body()
                double.requests.append(RecordedRequest(method, path, body))
                if double.response_delay:
                    time.sleep(double.response_delay)
                failure = double._take_failure(path)
                if failure is not None:
                    raise _HttpError(failure.status, failure.error)
                if method in ("GET", "HEAD") and path == "/":
                    self._send_text(200, "Ollama is running")
                    return
                route = _ROUTES.get((method, path))
                if route is None:
                    self._send_text(404, "404 page not found")
                    return
                if not isinstance(body, dict):
                    raise _HttpError(400, "request body must be a JSON object")
                result = route(double, body)
                streamed, payload = result if isinstance(result, tuple) else (False, result)
                if streamed:
                    self._stream(payload)
                else:
                    self._send_json(200, payload)
            except _HttpError as exc:
                self._send_json(exc.status, {"error": exc.error})
            except _DropConnection:
                self.close_connection = True

        def _send_text(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _send_json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _write_chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _stream(self, lines: Iterator[dict]) -> None:
            cut_after, malformed_after, error_after = double._take_stream_faults()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sent = 0
            try:
                for line in lines:
                    if cut_after is not None and sent >= cut_after:
                        raise _DropConnection
                    if error_after is not None and sent == error_after[0]:
                        self._write_chunk(json.dumps({"error": error_after[1]}).encode() + b"\n")
                        break
                    if malformed_after is not None and sent == malformed_after:
                        self._write_chunk(b'{"model": "broken", "message": {\n')
                        malformed_after = None
                    if sent and double.chunk_delay:
                        time.sleep(double.chunk_delay)
                    self._write_chunk(json.dumps(line).encode() + b"\n")
                    sent += 1
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                with double._lock:
                    double.aborted_streams += 1

    return Handler


_ROUTES: dict[tuple[str, str], Callable[[OllamaDouble, dict[str, Any]], Any]] = {
    ("GET", "/api/version"): lambda d, _b: {"version": VERSION},
    ("GET", "/api/tags"): lambda d, _b: {"models": [d.models[n].tag_entry()
                                                     for n in d.installed()]},
    ("GET", "/api/ps"): lambda d, _b: {"models": []},
    ("POST", "/api/show"): _show,
    ("POST", "/api/pull"): _pull,
    ("POST", "/api/create"): _create,
    ("DELETE", "/api/delete"): _delete,
    ("POST", "/api/chat"): _chat,
    ("POST", "/api/generate"): _generate,
    ("POST", "/api/embed"): _embed,
}


def main() -> None:
    """Serves the double in the foreground: ``python -m tests.doubles.ollama_double [PORT]``."""
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 11434
    double = OllamaDouble(installed=["mistral", "nomic-embed-text"], port=port).start()
    print(f"Ollama contract double on {double.url} (Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        double.stop()


if __name__ == "__main__":
    main()
