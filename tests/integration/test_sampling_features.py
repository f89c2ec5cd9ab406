"""OpenAI's sampling fields through real router and generation processes, over gRPC as the gateway
calls them: JSON replies from the embedded SmolLM2 (json_object parses, json_schema validates),
its per-token log probabilities, the penalties; Ollama (its contract double) refuses log
probabilities naming the field; an OpenAI-compatible upstream (a recording double speaking
OpenAI's documented streaming shape) receives the fields and its log probabilities come back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import jsonschema
import pytest

from tests.doubles.ollama_double import OllamaDouble
from upcoach_llm.api import common_pb2, router_pb2, router_pb2_grpc
from upcoach_llm.api.status_details import field_of

pytestmark = pytest.mark.integration
USER = common_pb2.ROLE_USER
EMBEDDED = "smollm2-135m-instruct"
VLLM_SERVED = "llama-3.2-3b"
SCHEMA = {"type": "object", "properties": {"tip": {"type": "string", "maxLength": 60}},
          "required": ["tip"]}
TIP = "Give me one tip to drink more water. Answer in JSON."


class OpenAIDouble:
    """A recording OpenAI-compatible upstream: ``/v1/models`` lists one model and every chat
    streams the same two-token reply with OpenAI's ``choices[].logprobs.content``; the request
    bodies are kept. A test double, not a model."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                self._send(200, "application/json",
                           json.dumps({"object": "list", "data": [{"id": VLLM_SERVED}]}))

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                double.bodies.append(json.loads(self.rfile.read(length)))
                events = [_event("{}", [_token("{}", -0.25, ("{}", -0.25), ("{", -1.5))]),
                          _event("", [], "stop"),
                          json.dumps({"choices": [], "usage": {"prompt_tokens": 9,
                                                               "completion_tokens": 1}}),
                          "[DONE]"]
                self._send(200, "text/event-stream", "".join(f"data: {e}\n\n" for e in events))

            def _send(self, status: int, kind: str, text: str) -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _token(text: str, logprob: float, *top: tuple[str, float]) -> dict:
    return {"token": text, "logprob": logprob, "bytes": None,
            "top_logprobs": [{"token": t, "logprob": p, "bytes": None} for t, p in top]}


def _event(content: str, logprobs: list[dict], finish: str | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": {"content": content} if content else {},
                                    "logprobs": {"content": logprobs}, "finish_reason": finish}]})


@pytest.fixture(scope="module")
def ollama() -> Iterator[OllamaDouble]:
    with OllamaDouble(installed=["mistral"]) as double:
        yield double


@pytest.fixture(scope="module")
def vllm() -> Iterator[OpenAIDouble]:
    double = OpenAIDouble()
    yield double
    double.close()


@pytest.fixture(scope="module")
def router(stack_factory, ollama, vllm) -> router_pb2_grpc.RouterServiceStub:
    stack = stack_factory(["generation", "router"], env={
        "OLLAMA_URL": ollama.url, "OLLAMA_MODELS": "mistral", "VLLM_URL": vllm.url,
        "VLLM_MODEL": VLLM_SERVED, "VLLM_CATALOG_MODEL": "llama3.2:3b",
        "GENERATION_PARALLEL": "2", "ROUTER_HEALTH_INTERVAL_S": "0.5",
        "ROUTER_STARTUP_WAIT_S": "20"})
    return stack.stub("router", router_pb2_grpc.RouterServiceStub)


def messages(text: str) -> list[common_pb2.ChatMessage]:
    return [common_pb2.ChatMessage(role=USER, content=text)]


def greedy(max_tokens: int, **fields: object) -> common_pb2.SamplingParams:
    return common_pb2.SamplingParams(max_tokens=max_tokens, temperature=0, seed=1, **fields)


def stream(router: router_pb2_grpc.RouterServiceStub, model: str, text: str,
           sampling: common_pb2.SamplingParams) -> list[router_pb2.ChatStreamResponse]:
    return list(router.ChatStream(router_pb2.ChatStreamRequest(
        model=model, messages=messages(text), sampling=sampling), timeout=120))


def test_json_object_and_json_schema_replies_from_the_embedded_model(router) -> None:
    chunks = stream(router, EMBEDDED, 'Return {"mood": "happy"} as JSON.', greedy(
        48, response_format=common_pb2.ResponseFormat(
            type=common_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT)))
    assert chunks[0].route.backend == "embedded"
    assert chunks[-1].finish_reason == common_pb2.FINISH_REASON_STOP
    assert isinstance(json.loads("".join(c.text for c in chunks)), dict)

    reply = router.Chat(router_pb2.ChatRequest(model=EMBEDDED, messages=messages(TIP), sampling=(
        greedy(64, response_format=common_pb2.ResponseFormat(
            type=common_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, schema_json=json.dumps(SCHEMA),
            schema_name="tip")))), timeout=120)
    assert reply.finish_reason == common_pb2.FINISH_REASON_STOP
    jsonschema.validate(json.loads(reply.text), SCHEMA)


def test_logprobs_from_the_embedded_model_streamed_and_whole(router) -> None:
    sampling = greedy(10, logprobs=True, top_logprobs=2)
    chunks = stream(router, EMBEDDED, TIP, sampling)
    text = "".join(c.text for c in chunks)
    logprobs = [lp for c in chunks for lp in c.logprobs]
    assert len(logprobs) == chunks[-1].usage.completion_tokens == 10
    assert "".join(lp.token for lp in logprobs) == text
    for lp in logprobs:
        assert lp.logprob <= 0 and len(lp.top_logprobs) == 2
        assert lp.top_logprobs[0].logprob >= lp.top_logprobs[1].logprob
        assert lp.top_logprobs[0].token == lp.token  # greedy: the likeliest token
    reply = router.Chat(router_pb2.ChatRequest(model=EMBEDDED, messages=messages(TIP),
                                               sampling=sampling), timeout=120)
    assert reply.text == text
    assert [(lp.token, lp.logprob) for lp in reply.logprobs] == [
        (lp.token, lp.logprob) for lp in logprobs]


def test_a_frequency_penalty_changes_a_greedy_reply(router) -> None:
    plain = "".join(c.text for c in stream(router, EMBEDDED, TIP, greedy(24)))
    penalised = stream(router, EMBEDDED, TIP, greedy(24, frequency_penalty=2.0,
                                                      presence_penalty=0.5))
    assert penalised[-1].usage.completion_tokens > 0
    assert "".join(c.text for c in penalised) != plain


def test_ollama_refuses_logprobs_naming_the_field(router, ollama) -> None:
    before = len(ollama.requests)
    with pytest.raises(grpc.RpcError) as caught:
        stream(router, "mistral", TIP, greedy(8, logprobs=True))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(caught.value) == "sampling.logprobs"
    assert not [r for r in ollama.requests[before:] if r.path == "/api/chat"]
    chunks = stream(router, "mistral", TIP, greedy(
        64, response_format=common_pb2.ResponseFormat(
            type=common_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT)))
    assert chunks[0].route.backend == "ollama"
    assert ollama.requests[-1].body["format"] == "json"
    assert isinstance(json.loads("".join(c.text for c in chunks)), dict)


def test_an_openai_compatible_upstream_gets_the_fields_and_returns_logprobs(router,
                                                                            vllm) -> None:
    chunks = stream(router, "llama3.2:3b", TIP, greedy(
        16, logprobs=True, top_logprobs=2, frequency_penalty=0.5, presence_penalty=0.25,
        response_format=common_pb2.ResponseFormat(
            type=common_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, schema_json=json.dumps(SCHEMA),
            schema_name="tip")))
    assert chunks[0].route.backend == "vllm"
    body = vllm.bodies[-1]
    assert body["model"] == VLLM_SERVED
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "tip", "schema": SCHEMA}}
    assert (body["frequency_penalty"], body["presence_penalty"]) == (0.5, 0.25)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    logprobs = [lp for c in chunks for lp in c.logprobs]
    assert [(lp.token, lp.logprob) for lp in logprobs] == [("{}", -0.25)]
    assert [(t.token, t.logprob) for t in logprobs[0].top_logprobs] == [("{}", -0.25),
                                                                        ("{", -1.5)]


def test_bad_fields_are_invalid_argument_naming_them(router) -> None:
    for sampling, field in [
        (greedy(8, top_logprobs=3), "sampling.top_logprobs"),
        (greedy(8, frequency_penalty=3.0), "sampling.frequency_penalty"),
        (greedy(8, response_format=common_pb2.ResponseFormat(
            type=common_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, schema_json="[]")),
         "sampling.response_format.schema_json"),
        (greedy(8, response_format=common_pb2.ResponseFormat(
            type=common_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
            schema_json='{"type": "shape"}')), "sampling.response_format.schema_json"),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            stream(router, EMBEDDED, TIP, sampling)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field_of(caught.value) == field
