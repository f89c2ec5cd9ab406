"""A fast contract double of OpenAI's chat API: the shared upstream of bench/bench_peer.py.

    .venv/bin/python -m bench.fake_upstream --port P [--chunks 20] [--token-delay-ms 0]
                                            [--model fake-model] [--host 127.0.0.1]

It follows https://platform.openai.com/docs/api-reference/chat for what a proxy relays:

- ``POST /v1/chat/completions`` without ``stream``: one ``chat.completion`` JSON object (the
  reply, ``finish_reason``, ``usage``);
- with ``"stream": true``: server-sent events ``data: {chat.completion.chunk}`` — a first chunk
  with ``delta.role``, one chunk per content piece, a chunk with an empty delta and the
  ``finish_reason``, then, when ``stream_options.include_usage`` is asked, a chunk with no
  choices and the ``usage`` (the other chunks then carry ``"usage": null``) — ending with
  ``data: [DONE]``; sent with ``Transfer-Encoding: chunked``, one HTTP chunk per event;
- ``GET /v1/models``: the one model it serves (``--model``); ``GET /health``: ``{"status":"ok"}``.

Errors use OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``): a body that is
not JSON or has no ``messages`` is 400, another model than ``--model`` is 404 ``model_not_found``,
other paths are 404.

The reply is deterministic, not a model: ``--chunks`` content pieces (default 20; one word and a
space each, cycling through a fixed sentence), capped by ``max_tokens``/``max_completion_tokens``
(then ``finish_reason`` is ``length``, else ``stop``); usage counts one completion token per piece
and one prompt token per word of the messages. ``--token-delay-ms`` sleeps that long before every
content piece of a stream, so a reply takes about chunks x delay, like a model producing tokens;
with no delay nothing sleeps and a whole stream goes out in one write.

A request may override both settings: a message whose text holds
``[fake-upstream chunks=N token-delay-ms=D]`` (either part alone works) gets N pieces, D ms apart.
Proxies relay messages verbatim, so one upstream serves every scenario of a benchmark.

It is the baseline of the peer benchmark, so it is lean: a raw ``asyncio.Protocol`` HTTP/1.1
server with keep-alive (and pipelining), on uvloop when installed, one process, replies built
from per-shape templates cached in memory. ``FakeUpstream`` starts it as a subprocess for tests
and benches (``with FakeUpstream(port) as upstream: upstream.url``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("Start", "small:", "pick", "one", "habit,", "tie", "it", "to", "something", "you",
         "already", "do,", "and", "keep", "it", "easy", "enough", "to", "repeat", "daily.")
DIRECTIVE = re.compile(r"\[fake-upstream((?:\s+(?:chunks|token-delay-ms)=\d+(?:\.\d+)?)+)\s*\]")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)
_CHUNKED_REQUEST = re.compile(rb"\r\ntransfer-encoding:", re.IGNORECASE)
_ids = itertools.count(1)
# Templates hold these where each reply's id and time go; as wide as what fills them, so the
# HTTP chunk sizes framed around them stay right.
ID_HOLE, CREATED_HOLE = "@ID@@@@@@@@@", "@CREATED@@"
_ID_HOLE, _CREATED_HOLE = ID_HOLE.encode(), CREATED_HOLE.encode()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _error(message: str, kind: str, code: str | None = None, param: str | None = None) -> bytes:
    return _dumps({"error": {"message": message, "type": kind, "param": param,
                             "code": code}}).encode()


class Settings:
    """The process defaults: content pieces per reply, delay before each piece, model served."""

    def __init__(self, chunks: int = 20, token_delay_ms: float = 0.0,
                 model: str = "fake-model") -> None:
        self.chunks = chunks
        self.token_delay_ms = token_delay_ms
        self.model = model
        self.models_body = _dumps({"object": "list", "data": [
            {"id": model, "object": "model", "created": int(time.time()),
             "owned_by": "fake-upstream"}]}).encode()
        self._templates: dict[tuple, Any] = {}

    def pieces(self, count: int) -> list[str]:
        return [WORDS[i % len(WORDS)] + " " for i in range(count)]

    def completion(self, model: str, count: int, finish: str, prompt: int) -> bytes:
        """The non-streamed reply, with its id and time still to fill in (``_fill``)."""
        key = ("json", model, count, finish, prompt)
        body = self._templates.get(key)
        if body is None:
            body = ('{"id":"chatcmpl-' + ID_HOLE + '","object":"chat.completion","created":'
                    + CREATED_HOLE + ',"model":'
                    + _dumps(model) + ',"system_fingerprint":"fp_fake","choices":[{"index":0,'
                    '"message":{"role":"assistant","content":'
                    + _dumps("".join(self.pieces(count))) + ',"refusal":null},"logprobs":null,'
                    '"finish_reason":' + _dumps(finish) + '}],"usage":'
                    + _dumps(_usage(prompt, count)) + "}").encode()
            self._remember(key, body)
        return body

    def stream(self, model: str, count: int, finish: str, prompt: int,
               include_usage: bool) -> tuple[bytes, list[bytes], bytes]:
        """The events of a streamed reply, each HTTP-chunk framed, id and time to fill in: (the
        role chunk, one per content piece, the finish/usage chunks and [DONE])."""
        key = ("sse", model, count, finish, prompt, include_usage)
        events = self._templates.get(key)
        if events is None:
            head = ('{"id":"chatcmpl-' + ID_HOLE + '","object":"chat.completion.chunk",'
                    '"created":' + CREATED_HOLE + ','
                    '"model":' + _dumps(model) + ',"system_fingerprint":"fp_fake","choices":[')
            tail = ',"usage":null}' if include_usage else "}"

            def choice(delta: dict[str, str], reason: str | None) -> str:
                return (head + '{"index":0,"delta":' + _dumps(delta) + ',"logprobs":null,'
                        '"finish_reason":' + _dumps(reason) + "}]" + tail)

            first = _frame(choice({"role": "assistant", "content": ""}, None))
            middle = [_frame(choice({"content": p}, None)) for p in self.pieces(count)]
            last = _frame(choice({}, finish))
            if include_usage:
                last += _frame(head + '],"usage":' + _dumps(_usage(prompt, count)) + "}")
            last += _frame("[DONE]")
            events = (first, middle, last)
            self._remember(key, events)
        return events

    def _remember(self, key: tuple, value: Any) -> None:
        if len(self._templates) > 256:
            self._templates.clear()
        self._templates[key] = value


def _frame(data: str) -> bytes:
    """One SSE event as one HTTP/1.1 chunk."""
    event = b"data: " + data.encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


class Request:
    """A parsed chat request: what to send back."""

    def __init__(self, model: str, stream: bool, include_usage: bool, count: int,
                 finish: str, prompt: int, delay_s: float) -> None:
        self.model, self.stream, self.include_usage = model, stream, include_usage
        self.count, self.finish, self.prompt, self.delay_s = count, finish, prompt, delay_s


def parse_chat(settings: Settings, body: bytes) -> Request | tuple[int, bytes]:
    """The chat request, or (status, error body) as OpenAI answers a bad one."""
    try:
        data = json.loads(body)
    except ValueError:
        return 400, _error("We could not parse the JSON body of your request.",
                           "invalid_request_error")
    if not isinstance(data, dict):
        return 400, _error("The request body must be a JSON object.", "invalid_request_error")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, _error("'messages' must be a non-empty array.", "invalid_request_error",
                           param="messages")
    model = data.get("model")
    if model != settings.model:
        return 404, _error(f"The model `{model}` does not exist or you do not have access to "
                           "it.", "invalid_request_error", code="model_not_found", param="model")
    count, delay_ms, prompt = settings.chunks, settings.token_delay_ms, 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # content parts: the text ones
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            continue
        prompt += len(content.split())
        match = DIRECTIVE.search(content) if "[fake-upstream" in content else None
        if match:
            for name, value in re.findall(r"([\w-]+)=([\d.]+)", match.group(1)):
                if name == "chunks":
                    count = int(float(value))
                else:
                    delay_ms = float(value)
    finish = "stop"
    limit = data.get("max_completion_tokens") or data.get("max_tokens")
    if isinstance(limit, int) and 0 < limit < count:
        count, finish = limit, "length"
    options = data.get("stream_options") or {}
    return Request(model, data.get("stream") is True,
                   isinstance(options, dict) and options.get("include_usage") is True,
                   count, finish, prompt, delay_ms / 1000)


_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed",
            411: b"Length Required", 413: b"Payload Too Large"}


class Connection(asyncio.Protocol):
    """One client connection: requests answered in order (a streamed reply with a delay runs
    as a task; requests pipelined behind it wait in the buffer)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.process()

    def process(self) -> None:
        while self.transport is not None and not self.busy:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 65536:
                    self.reply(413, _error("Headers too large.", "invalid_request_error"), True)
                return
            head = bytes(self.buffer[:end + 2])
            match = _CONTENT_LENGTH.search(head)
            if match is None and _CHUNKED_REQUEST.search(head):
                self.reply(411, _error("Send a Content-Length.", "invalid_request_error"), True)
                return
            length = int(match.group(1)) if match else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            self.handle(head, body, _CLOSE.search(head) is not None)

    def handle(self, head: bytes, body: bytes, close: bool) -> None:
        line = head[:head.find(b"\r\n")].split(b" ")
        method, path = line[0], line[1].split(b"?", 1)[0] if len(line) > 1 else b""
        if path == b"/v1/chat/completions":
            if method != b"POST":
                self.reply(405, _error("Use POST.", "invalid_request_error"), close)
                return
            request = parse_chat(self.settings, body)
            if isinstance(request, tuple):
                self.reply(*request, close)
            elif not request.stream:
                reply = self.settings.completion(request.model, request.count, request.finish,
                                                 request.prompt)
                self.reply(200, _fill(reply), close)
            else:
                self.stream(request, close)
        elif path in (b"/v1/models", b"/health") and method == b"GET":
            body = self.settings.models_body if path == b"/v1/models" else b'{"status":"ok"}'
            self.reply(200, body, close)
        else:
            self.reply(404, _error(f"Unknown request URL: {method.decode()} {path.decode()}.",
                                   "invalid_request_error", code="unknown_url"), close)

    def reply(self, status: int, body: bytes, close: bool) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n%s\r\n%s"
                             % (status, _REASONS[status], len(body),
                                b"connection: close\r\n" if close else b"", body))
        if close:
            self.transport.close()

    def stream(self, request: Request, close: bool) -> None:
        first, middle, last = self.settings.stream(request.model, request.count, request.finish,
                                                   request.prompt, request.include_usage)
        cid, created = _ids_now()
        head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
                + (b"connection: close\r\n" if close else b"") + b"\r\n")
        if request.delay_s <= 0:
            assert self.transport is not None
            self.transport.write(_fill(head + first + b"".join(middle) + last + b"0\r\n\r\n",
                                       cid, created))
            if close:
                self.transport.close()
            return
        self.busy = True
        asyncio.get_running_loop().create_task(
            self._paced(head + first, middle, last + b"0\r\n\r\n", request.delay_s, close,
                        cid, created))

    async def _paced(self, head: bytes, middle: list[bytes], last: bytes, delay: float,
                     close: bool, cid: bytes, created: bytes) -> None:
        try:
            transport = self.transport
            if transport is None:
                return
            transport.write(_fill(head, cid, created))
            for event in middle:
                await asyncio.sleep(delay)
                if transport.is_closing():
                    return
                transport.write(_fill(event, cid, created))
            transport.write(_fill(last, cid, created))
            if close:
                transport.close()
        finally:
            self.busy = False
        if self.buffer:
            self.process()


def _ids_now() -> tuple[bytes, bytes]:
    """A new id and the time, as wide as the holes they fill (frame lengths stay right)."""
    return b"%012d" % (next(_ids) % 10**12), b"%010d" % int(time.time())


def _fill(template: bytes, cid: bytes | None = None, created: bytes | None = None) -> bytes:
    if cid is None or created is None:
        cid, created = _ids_now()
    return template.replace(_ID_HOLE, cid).replace(_CREATED_HOLE, created)


async def serve(host: str, port: int, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(settings), host, port, backlog=1024,
                                      reuse_address=True)
    print(f"fake upstream listening on http://{host}:{port} (model {settings.model}, "
          f"{settings.chunks} chunks, token delay {settings.token_delay_ms:g} ms, "
          f"pid {os.getpid()})", flush=True)
    async with server:
        await server.serve_forever()


class FakeUpstream:
    """The fake upstream as a subprocess on ``port``, ready when the block starts."""

    def __init__(self, port: int, *, chunks: int = 20, token_delay_ms: float = 0.0,
                 model: str = "fake-model") -> None:
        self.port, self.model = port, model
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_upstream", "--port", str(port), "--chunks",
             str(chunks), "--token-delay-ms", str(token_delay_ms), "--model", model],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the one line it prints once it listens
        if "listening" not in line:
            self.stop()
            raise RuntimeError(f"fake upstream did not start (exit {self.process.poll()}): "
                               f"{line!r}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> FakeUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=20,
                        help="content pieces per reply (default: 20)")
    parser.add_argument("--token-delay-ms", type=float, default=0.0,
                        help="sleep before each streamed piece (default: 0, no sleeps)")
    parser.add_argument("--model", default="fake-model",
                        help="the one model served and listed (default: fake-model)")
    args = parser.parse_args()
    settings = Settings(args.chunks, args.token_delay_ms, args.model)
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.host, args.port, settings))


if __name__ == "__main__":
    main()
