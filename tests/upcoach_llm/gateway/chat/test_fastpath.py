"""The chat fast path serves well-formed chat completions itself, with the route FastAPI would
record, and hands every other request to the REST app with its body as it was read."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from upcoach_llm.gateway.chat.fastpath import ChatFastPath
from upcoach_llm.gateway.chat.protocol import ChatCompletionRequest
from upcoach_llm.gateway.chat.router import build_router
from upcoach_llm.gateway.errors import APIError

GOOD = orjson.dumps({"model": "mistral", "messages": [{"role": "user", "content": "hi"}]})


class FakeServing:
    def __init__(self, error: Exception | None = None) -> None:
        self.bodies: list[ChatCompletionRequest] = []
        self.error = error

    async def create(self, request: Any, body: ChatCompletionRequest) -> Response:
        self.bodies.append(body)
        if self.error is not None:
            raise self.error
        return Response(b"served", media_type="text/plain")


class RestApp:
    """Records what reached it and the body it could read."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        await Response(b"rest", media_type="text/plain")(scope, receive, send)


def call(path: str, body: bytes, *, method: str = "POST", content_type: bytes | None =
         b"application/json", serving: FakeServing | None = None,
         ) -> tuple[FakeServing, RestApp, Scope, list[Message]]:
    serving = serving or FakeServing()
    rest = RestApp()
    router = build_router(serving)  # type: ignore[arg-type]
    app = ChatFastPath(rest, serving, router.routes)  # type: ignore[arg-type]
    headers = [(b"content-type", content_type)] if content_type is not None else []
    scope: Scope = {"type": "http", "method": method, "path": path, "root_path": "",
                    "headers": headers, "query_string": b"", "state": {}}
    parts = [{"type": "http.request", "body": body[:5], "more_body": True},
             {"type": "http.request", "body": body[5:], "more_body": False}]
    sent: list[Message] = []

    async def receive() -> Message:
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return serving, rest, scope, sent


def body_of(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_well_formed_request_is_served_without_the_rest_app() -> None:
    for path in ("/v1/chat/completions", "/api/chat/completions"):
        serving, rest, scope, sent = call(path, GOOD)
        assert [b.messages[0].content for b in serving.bodies] == ["hi"]
        assert rest.bodies == [] and body_of(sent) == b"served"
        assert scope["route"].path == path  # the metrics label, as FastAPI's router sets it


def test_a_json_content_type_with_charset_and_none_at_all_are_taken() -> None:
    for content_type in (b"application/json; charset=utf-8", b"Application/JSON", None):
        serving, rest, _, _ = call("/v1/chat/completions", GOOD, content_type=content_type)
        assert len(serving.bodies) == 1 and rest.bodies == []


def test_everything_else_reaches_the_rest_app_with_its_whole_body() -> None:
    cases: list[dict[str, Any]] = [
        {"body": b'{"model": "mistral", "messages": [}'},  # not JSON
        {"body": b'{"model": "mistral", "temperature": NaN, "messages": []}'},  # json.loads' own
        {"body": b'[1, 2, 3]'},  # not an object
        {"body": orjson.dumps({"messages": [], "bogus": 1})},  # fails validation
        {"body": b""},
        {"body": GOOD, "content_type": b"text/plain"},
        {"body": GOOD, "method": "PUT"},
    ]
    for case in cases:
        serving, rest, _, sent = call("/v1/chat/completions", **case)
        assert serving.bodies == [] and rest.bodies == [case["body"]], case
        assert body_of(sent) == b"rest"
    _, rest, _, _ = call("/v1/models", GOOD)
    assert rest.bodies == [GOOD]


def test_an_api_error_from_the_handler_is_answered_in_the_rest_shape() -> None:
    error = APIError(404, "model 'x' not found", code="model_not_found")
    _, rest, _, sent = call("/v1/chat/completions", GOOD, serving=FakeServing(error))
    assert rest.bodies == [] and sent[0]["status"] == 404
    assert orjson.loads(body_of(sent)) == orjson.loads(error.to_response(
        "/v1/chat/completions").body)


def test_an_unexpected_error_is_the_rest_apps_500_not_an_escape() -> None:
    _, rest, _, sent = call("/v1/chat/completions", GOOD,
                            serving=FakeServing(RuntimeError("boom")))
    assert rest.bodies == [] and sent[0]["status"] == 500
    error = orjson.loads(body_of(sent))["error"]
    assert error["code"] == "internal" and "RuntimeError" in error["message"]
    assert "boom" not in body_of(sent).decode()


def test_a_failure_after_the_response_started_is_logged_with_its_traceback_and_raised(
        caplog: Any) -> None:
    from starlette.responses import StreamingResponse

    async def chunks() -> Any:
        yield b"data: first\n\n"
        raise RuntimeError("stream broke")

    class Streaming(FakeServing):
        async def create(self, request: Any, body: ChatCompletionRequest) -> Response:
            return StreamingResponse(chunks(), media_type="text/event-stream")

    with caplog.at_level("ERROR"):
        try:
            call("/v1/chat/completions", GOOD, serving=Streaming())
        except RuntimeError as exc:
            assert str(exc) == "stream broke"
        else:
            raise AssertionError("the failure did not reach the boundary")
    [record] = [r for r in caplog.records if r.message == "unhandled error"]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
