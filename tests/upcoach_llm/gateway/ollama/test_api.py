"""Ollama's API on the gateway in front of the scripted double, through the official ``ollama``
client (AsyncClient: the gateway serves in the test's event loop) and raw HTTP."""

from __future__ import annotations

import json

import ollama
import pytest

from tests.upcoach_llm.gateway.conftest import RunningGateway
from tests.upcoach_llm.gateway.doubles import SERVED

KEY = "ollama-test-key"
HI = [{"role": "user", "content": "hello there"}]


@pytest.fixture
async def gw(gateway) -> RunningGateway:
    return await gateway({"LLM_API_KEY": KEY, "RATE_LIMIT_RPM": "0"})


def client(gw: RunningGateway) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=gw.url, headers={"Authorization": f"Bearer {KEY}"})


async def test_chat_whole_and_streamed(gw: RunningGateway) -> None:
    reply = await client(gw).chat(model="mistral", messages=HI, stream=False,
                                  options={"num_predict": 8, "temperature": 0.5, "seed": 3})
    assert reply.message.role == "assistant"
    assert reply.message.content == "echo: hello there"
    assert reply.model == SERVED and reply.done and reply.done_reason == "stop"
    assert reply.eval_count == 3 and reply.prompt_eval_count == 2
    assert reply.total_duration > 0 and reply.eval_duration == 1_000_000
    sent = gw.double.calls.chat[-1]
    assert (sent.model, sent.sampling.max_tokens, sent.sampling.seed) == ("mistral", 8, 3)
    assert sent.sampling.temperature == pytest.approx(0.5)

    parts = [part async for part in await client(gw).chat(model="mistral", messages=HI,
                                                          stream=True)]
    assert "".join(p.message.content for p in parts) == "echo: hello there"
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count == 3


async def test_an_assistant_message_of_no_text_is_history_as_it_came(gw: RunningGateway) -> None:
    history = [*HI, {"role": "assistant", "content": ""}, {"role": "user", "content": "again"}]
    reply = await client(gw).chat(model="mistral", messages=history)
    assert reply.message.content == "echo: again"
    sent = gw.double.calls.chat[-1]
    assert [(m.role, m.content) for m in sent.messages] == [
        (2, "hello there"), (3, ""), (2, "again")]
    # Ollama's server reads a message without content as empty.
    del history[1]["content"]
    async with gw.client(headers={"Authorization": f"Bearer {KEY}"}) as http:
        reply = await http.post("/api/chat", json={"model": "mistral", "messages": history,
                                                   "stream": False})
    assert reply.status_code == 200, reply.text
    assert [m.content for m in gw.double.calls.chat[-1].messages] == ["hello there", "", "again"]


async def test_generate_is_a_chat_of_system_and_prompt(gw: RunningGateway) -> None:
    reply = await client(gw).generate(model="mistral", prompt="say hi", system="be brief",
                                      format="json", options={"stop": ["\n"]})
    assert reply.response == "echo: say hi" and reply.done_reason == "stop"
    sent = gw.double.calls.chat[-1]
    assert [(m.role, m.content) for m in sent.messages] == [(1, "be brief"), (2, "say hi")]
    assert list(sent.sampling.stop) == ["\n"]
    assert sent.sampling.response_format.type == 2  # json_object
    parts = [p async for p in await client(gw).generate(model="mistral", prompt="go",
                                                        stream=True)]
    assert "".join(p.response for p in parts) == "echo: go"
    assert parts[-1].done and parts[-1].response == ""


@pytest.mark.parametrize(("keep_alive", "reason"), [
    (0, "unload"), ("0", "unload"), ("0h", "unload"), ("0ms", "unload"), ("5m", "load"),
    ("1h30m", "load"), (-1, "load"), (300, "load")])
async def test_keep_alive_is_a_duration_as_ollama_reads_it(gw: RunningGateway, keep_alive,
                                                           reason: str) -> None:
    reply = await client(gw).generate(model="mistral", keep_alive=keep_alive)
    assert reply.done_reason == reason


@pytest.mark.parametrize("keep_alive", ["banana", "5", "", "-1"])
async def test_a_keep_alive_that_is_no_duration_is_a_400(gw: RunningGateway,
                                                        keep_alive: str) -> None:
    async with gw.client(headers={"Authorization": f"Bearer {KEY}"}) as http:
        reply = await http.post("/api/chat", json={"model": "mistral", "messages": [],
                                                   "keep_alive": keep_alive})
    assert reply.status_code == 400
    assert set(reply.json()) == {"error"} and "keep_alive" in reply.json()["error"]


async def test_a_request_without_prompt_loads_the_model(gw: RunningGateway) -> None:
    reply = await client(gw).generate(model="mistral")
    assert (reply.done, reply.done_reason, reply.response) == (True, "load", "")
    with pytest.raises(ollama.ResponseError) as unknown:
        await client(gw).chat(model="gpt-9", messages=[])
    assert unknown.value.status_code == 404 and "gpt-9" in unknown.value.error
    for call in (client(gw).generate(model="nomic-embed-text"),
                 client(gw).chat(model="nomic-embed-text", messages=[])):
        with pytest.raises(ollama.ResponseError) as embedding:
            await call
        assert embedding.value.status_code == 400
        assert embedding.value.error.startswith('"nomic-embed-text" does not support ')


async def test_models_show_and_ps(gw: RunningGateway) -> None:
    listed = await client(gw).list()
    assert [m.model for m in listed.models] == ["mistral", "nomic-embed-text"]
    assert listed.models[0].size == 4100000000 and len(listed.models[0].digest) == 64
    shown = await client(gw).show("mistral")
    assert shown.capabilities == ["completion"] and shown.modelinfo["general.name"] == "mistral"
    assert (await client(gw).ps()).models == []  # the double's models have no embedded backend
    with pytest.raises(ollama.ResponseError) as unknown:
        await client(gw).show("gpt-9")
    assert unknown.value.status_code == 404


async def test_embed_and_both_shapes_of_api_embeddings(gw: RunningGateway) -> None:
    reply = await client(gw).embed(model="nomic-embed-text", input=["ab", "abcd"])
    assert reply.embeddings == [[2.0, 0.5, -0.25, 1.0], [4.0, 0.5, -0.25, 1.0]]
    assert reply.model == "all-minilm-l6-v2" and reply.prompt_eval_count == 2
    short = await client(gw).embed(model="nomic-embed-text", input="ab", dimensions=2)
    assert short.embeddings == [pytest.approx([2.0 / 2.0615528, 0.5 / 2.0615528])]
    with pytest.raises(ollama.ResponseError, match="dimensions: ") as wide:
        await client(gw).embed(model="nomic-embed-text", input="ab", dimensions=5)
    assert wide.value.status_code == 400
    legacy = await client(gw).embeddings(model="nomic-embed-text", prompt="abc")
    assert legacy.embedding == [3.0, 0.5, -0.25, 1.0]
    async with gw.client(headers={"Authorization": f"Bearer {KEY}"}) as http:
        openai = await http.post("/api/embeddings", json={"input": "abc"})
        assert openai.json()["data"][0]["embedding"] == [3.0, 0.5, -0.25, 1.0]
        bad_openai = await http.post("/api/embeddings", json={"input": ""})
        assert bad_openai.json()["error"]["param"] == "input"
        bad_legacy = await http.post("/api/embeddings", json={"model": "x", "prompt": 3})
        assert bad_legacy.status_code == 400
        assert bad_legacy.json()["error"].startswith("prompt: ")
        unknown = await http.post("/api/embeddings", json={"model": "gpt-9", "prompt": "a"})
        assert unknown.status_code == 404 and set(unknown.json()) == {"error"}


@pytest.mark.parametrize(("body", "field"), [
    ({"model": "mistral", "messages": HI, "options": {"top_k": 20}}, "options.top_k"),
    ({"model": "mistral", "messages": HI, "options": {"num_predict": "8"}},
     "options.num_predict"),
    ({"model": "mistral", "messages": HI, "options": {"bogus": 1}}, "options.bogus"),
    ({"model": "mistral", "messages": HI, "tools": [{"type": "function"}]}, "tools"),
    ({"model": "mistral", "messages": HI, "think": True}, "think"),
    ({"model": "mistral", "messages": HI, "format": "xml"}, "format"),
    ({"model": "mistral", "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]},
     "messages[0].images"),
    ({"model": "mistral", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ({"model": "mistral", "messages": [{"role": "user"}]}, "messages[0].content"),
    ({"model": "mistral", "messages": [{"role": "user", "content": " "}]}, "messages[0].content"),
    ({"messages": HI}, "model"),
    ({"model": "mistral", "messages": HI, "stream": False, "options": {"num_predict": 5000}},
     "options.num_predict"),
])
async def test_chat_errors_name_the_field_in_ollamas_shape(gw: RunningGateway, body: dict,
                                                           field: str) -> None:
    async with gw.client(headers={"Authorization": f"Bearer {KEY}"}) as http:
        reply = await http.post("/api/chat", json=body)
    assert reply.status_code == 400, reply.text
    assert set(reply.json()) == {"error"}
    assert reply.json()["error"].startswith(f"{field}: "), reply.json()


@pytest.mark.parametrize(("body", "field"), [
    ({"model": "mistral", "prompt": "x", "raw": True}, "raw"),
    ({"model": "mistral", "prompt": "x", "images": ["aGk="]}, "images"),
    ({"model": "mistral", "prompt": "x", "context": [1, 2]}, "context"),
    ({"model": "mistral", "prompt": "x", "suffix": "end"}, "suffix"),
])
async def test_generate_refuses_what_it_cannot_do(gw: RunningGateway, body: dict,
                                                  field: str) -> None:
    async with gw.client(headers={"Authorization": f"Bearer {KEY}"}) as http:
        reply = await http.post("/api/generate", json=body)
    assert reply.status_code == 400 and reply.json()["error"].startswith(f"{field}: ")


async def test_gate_and_upstream_errors_in_ollamas_shape(gw: RunningGateway) -> None:
    async with gw.client() as http:
        anonymous = await http.get("/api/tags")
        assert anonymous.status_code == 401 and set(anonymous.json()) == {"error"}
        guide = await http.post("/api/chat/completions", json={"messages": HI})
        assert guide.status_code == 401 and set(guide.json()["error"]) >= {"message", "param"}
        http.headers["Authorization"] = f"Bearer {KEY}"
        busy = await http.post("/api/chat", json={"model": "mistral", "stream": False,
                                                   "messages": [{"role": "user",
                                                                 "content": "BUSY"}]})
        assert busy.status_code == 429 and set(busy.json()) == {"error"}
        assert busy.headers["retry-after"] == "3"
        malformed = await http.post("/api/chat", content=b"{", headers={
            "Content-Type": "application/json"})
        assert malformed.status_code == 400 and set(malformed.json()) == {"error"}


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded",
                                          "text/plain"])
async def test_bodies_are_json_whatever_their_content_type(gw: RunningGateway,
                                                           content_type: str | None) -> None:
    """As Ollama reads them: its docs' ``curl .../api/chat -d '{...}'`` sends a form type."""
    headers = {"Authorization": f"Bearer {KEY}"}
    if content_type:
        headers["Content-Type"] = content_type
    chat = json.dumps({"model": "mistral", "messages": HI, "stream": False}).encode()
    async with gw.client(headers=headers) as http:
        reply = await http.post("/api/chat", content=chat)
        assert reply.status_code == 200
        assert reply.json()["message"]["content"] == "echo: hello there"
        shown = await http.post("/api/show", content=b'{"model": "mistral"}')
        assert shown.status_code == 200 and "model_info" in shown.json()
        bad = await http.post("/api/generate", content=b'{"model": "mistral", "prompt": 5}')
        assert bad.status_code == 400 and bad.json()["error"].startswith("prompt: ")
        empty = await http.post("/api/embed", content=b"")
        assert empty.status_code == 400
        assert empty.json() == {"error": "missing request body: send a JSON object"}
        # The OpenAI-shaped paths still ask for JSON by its Content-Type.
        openai = await http.post("/v1/chat/completions", content=chat)
    assert openai.status_code == (200 if content_type is None else 415)


async def test_an_error_after_the_stream_started_is_one_error_line(gw: RunningGateway) -> None:
    async with gw.client(headers={"Authorization": f"Bearer {KEY}"}) as http:
        reply = await http.post("/api/chat", json={
            "model": "mistral", "messages": [{"role": "user", "content": "FAIL_AFTER 2"}]})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in reply.text.splitlines()]
    assert [line["message"]["content"] for line in lines[:-1]] == ["part0 ", "part1 "]
    assert lines[-1] == {"error": "backend went away"}
    with pytest.raises(ollama.ResponseError, match="backend went away"):
        async for _ in await client(gw).chat(model="mistral", stream=True, messages=[
                {"role": "user", "content": "FAIL_AFTER 1"}]):
            pass


async def test_logprobs_in_ollamas_shape(gw: RunningGateway) -> None:
    async with gw.client(headers={"Authorization": f"Bearer {KEY}"}) as http:
        reply = await http.post("/api/chat", json={"model": "mistral", "messages": HI,
                                                   "stream": False, "logprobs": True,
                                                   "top_logprobs": 1})
    tokens = reply.json()["logprobs"]
    assert [t["token"] for t in tokens] == ["echo:", " hello", " there"]
    assert tokens[1] == {"token": " hello", "logprob": -0.5,
                         "top_logprobs": [{"token": "alt0", "logprob": -1.0}]}


async def test_rate_limit_and_body_limit_in_ollamas_shape(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "2", "MAX_BODY_BYTES": "2000"})
    async with gw.client() as http:
        large = await http.post("/api/embed", json={"model": "m", "input": "x" * 5000})
        assert large.status_code == 413 and set(large.json()) == {"error"}
        assert (await http.get("/api/ps")).status_code == 200
        limited = await http.get("/api/ps")
        assert limited.status_code == 429 and set(limited.json()) == {"error"}
        assert "retry-after" in limited.headers


async def test_openapi_documents_the_ollama_api(gw: RunningGateway) -> None:
    async with gw.client() as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
    chat = paths["/api/chat"]["post"]["responses"]
    assert set(chat["200"]["content"]) == {"application/json", "application/x-ndjson"}
    assert chat["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OllamaErrorResponse"}
    shared = paths["/api/embeddings"]["post"]
    assert len(shared["requestBody"]["content"]["application/json"]["schema"]["anyOf"]) == 2
    assert {"/api/generate", "/api/tags", "/api/show", "/api/ps", "/api/embed"} <= set(paths)
