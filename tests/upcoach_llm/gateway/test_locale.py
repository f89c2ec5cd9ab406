"""The caller's languages reach the router as ``locale`` and ``more_locales``: from
Accept-Language on every REST
chat (OpenAI, coaching, Ollama; whole and streamed) and on the hybrid decision, from the field
itself over grpc-web; a malformed header is a 400 (Ollama's error shape on its paths), and a
malformed field INVALID_ARGUMENT naming it, before the router or the cache is asked. The
decision's ``messages`` reach the router as sent. Against the double."""

from __future__ import annotations

import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType
from google.rpc import error_details_pb2

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.api import common_pb2, router_connect, router_pb2

HELLO = [{"role": "user", "content": "hi there"}]
CHATS = [("/v1/chat/completions", {"messages": HELLO}),
         ("/v1/chat/completions", {"messages": HELLO, "stream": True}),
         ("/api/coaching/chat", {"messages": HELLO, "context_type": "habits"}),
         ("/api/chat", {"model": "mistral", "messages": HELLO, "stream": False}),
         ("/api/generate", {"model": "mistral", "prompt": "hi there"})]
OLLAMA = ("/api/chat", "/api/generate")


@pytest.mark.parametrize(("path", "body"), CHATS)
async def test_every_rest_chat_sends_the_preferred_language(gateway, path, body) -> None:
    gw: RunningGateway = await gateway()
    sent = gw.double.calls.chat
    async with gw.client() as client:
        for header, locales in (("es-MX, en;q=0.5", ["es-MX", "en"]),
                                ("en;q=0.4, es", ["es", "en"]), (None, [""])):
            headers = {"Accept-Language": header} if header else {}
            reply = await client.post(path, json=body, headers={
                **headers, "Cache-Control": "no-cache"})
            assert reply.status_code == 200, reply.text
            assert [sent[-1].locale, *sent[-1].more_locales] == locales


@pytest.mark.parametrize(("path", "body"), CHATS)
async def test_a_malformed_accept_language_never_reaches_the_router(gateway, path, body) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post(path, json=body, headers={"Accept-Language": "es;q=high"})
    assert reply.status_code == 400
    error = reply.json()["error"]
    if path in OLLAMA:  # Ollama's shape: {"error": "<message>"}
        assert error.startswith("Accept-Language: ")
    else:
        assert (error["param"], error["type"]) == ("Accept-Language", "invalid_request_error")
    assert gw.double.calls.chat == []


async def test_grpc_web_passes_the_locale_field(gateway) -> None:
    gw: RunningGateway = await gateway()
    client = router_connect.RouterServiceClient(gw.url, protocol=ProtocolType.GRPC_WEB)
    messages = [common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="hi there")]
    await client.chat(router_pb2.ChatRequest(messages=messages, locale="ca",
                                             more_locales=["es", "en"]))
    assert gw.double.calls.chat[-1].locale == "ca"
    assert gw.double.calls.chat[-1].more_locales == ["es", "en"]
    [_ async for _ in client.chat_stream(router_pb2.ChatStreamRequest(messages=messages,
                                                                      locale="en-GB"))]
    assert gw.double.calls.chat[-1].locale == "en-GB"


@pytest.mark.parametrize("protocol", [ProtocolType.GRPC_WEB, ProtocolType.CONNECT])
async def test_a_malformed_locale_over_grpc_web_is_refused_even_when_cached(
        gateway, protocol: ProtocolType) -> None:
    gw: RunningGateway = await gateway()
    client = router_connect.RouterServiceClient(gw.url, protocol=protocol)
    messages = [common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="hi there")]
    sampling = common_pb2.SamplingParams(temperature=0)
    await client.chat(router_pb2.ChatRequest(messages=messages, sampling=sampling))
    calls = len(gw.double.calls.chat)
    with pytest.raises(ConnectError) as caught:
        await client.chat(router_pb2.ChatRequest(messages=messages, sampling=sampling,
                                                 locale="!!not a tag!!"))
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert caught.value.message.startswith("locale: ")
    [detail] = caught.value.details
    assert detail.type_name == "google.rpc.BadRequest"
    violation = error_details_pb2.BadRequest.FromString(detail.message_bytes).field_violations[0]
    assert violation.field == "locale"
    with pytest.raises(ConnectError) as streamed:
        [_ async for _ in client.chat_stream(router_pb2.ChatStreamRequest(
            messages=messages, sampling=sampling, locale="x" * 100))]
    assert streamed.value.code == Code.INVALID_ARGUMENT
    with pytest.raises(ConnectError) as more:
        await client.chat(router_pb2.ChatRequest(messages=messages, sampling=sampling,
                                                 locale="es", more_locales=["en", "e s"]))
    assert more.value.code == Code.INVALID_ARGUMENT
    assert more.value.message.startswith("more_locales[1]: ")
    assert len(gw.double.calls.chat) == calls


async def test_decide_sends_messages_and_the_language(gateway) -> None:
    gw: RunningGateway = await gateway()
    conversation = [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "one"},
                                                 {"type": "text", "text": " tip"}]}]
    async with gw.client() as client:
        reply = await client.post("/api/inference/decide", json={"messages": conversation},
                                  headers={"Accept-Language": "ca, es;q=0.5"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["crisis_response"] is None
        sent = gw.double.calls.decide[-1]
        assert (sent.prompt, sent.locale, sent.more_locales) == ("", "ca", ["es"])
        assert [(m.role, m.content) for m in sent.messages] == [
            (common_pb2.ROLE_SYSTEM, "Be brief."), (common_pb2.ROLE_USER, "one tip")]
        reply = await client.post("/api/inference/decide", json={"prompt": "hi"})
        assert (gw.double.calls.decide[-1].prompt, gw.double.calls.decide[-1].locale,
                len(gw.double.calls.decide[-1].messages)) == ("hi", "", 0)
        calls = len(gw.double.calls.decide)
        for body in ({"mode": "auto"}, {"prompt": "hi", "messages": conversation},
                     {"prompt": None, "messages": conversation}):
            reply = await client.post("/api/inference/decide", json=body)
            assert reply.status_code == 400 and reply.json()["error"]["param"] == "prompt"
        for body, param in (({"prompt": None}, "prompt"), ({"prompt": "  "}, "prompt"),
                            ({"messages": None}, "messages")):
            reply = await client.post("/api/inference/decide", json=body)
            assert reply.status_code == 400, (body, reply.text)
            assert reply.json()["error"]["param"] == param
        assert len(gw.double.calls.decide) == calls
