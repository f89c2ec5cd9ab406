"""grpc-web chats (the Python Connect client, as the mobile app speaks it) through the real stack
(gateway, router with its crisis check, embedding with MiniLM, generation with SmolLM2, Redis) get
the REST chats' caches: a repeated chat is an exact hit, whole and streamed; a paraphrase for a
cacheable feature is a semantic hit with its similarity; another API key never sees either entry;
a crisis conversation is answered with the crisis reply and never cached; the token budget still
refuses what does not fit, while a cache hit spends nothing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
import redis
from connectrpc.client import ResponseMetadata
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType
from google.rpc import error_details_pb2

from tests.integration.gateway_support import GatewayProcess
from upcoach_llm.api import common_pb2, router_connect, router_pb2

pytestmark = pytest.mark.integration
PREFIX = f"upcoach:test:{uuid.uuid4().hex[:12]}:"
ADMIN_KEY = "operator-key-for-metrics"
KEYS = ("grpcweb-key-one", "grpcweb-key-two")
GREEDY = common_pb2.SamplingParams(temperature=0, max_tokens=8)
# A stop sequence ends the reply with "stop" (only finished replies are stored) in few tokens.
SEMANTIC = common_pb2.SamplingParams(temperature=0, max_tokens=40, stop=["."])
STORED = "Give me an affirmation about feeling confident"
PARAPHRASE = "Write me an affirmation for feeling confident"
CRISIS = ["I've been really low lately", "I don't see the point of anything",
          "I want to end my life"]


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory(env={"REDIS_KEY_PREFIX": PREFIX, "RATE_LIMIT_RPM": "1000",
                              "LLM_API_KEY": ",".join(KEYS), "LLM_ADMIN_KEY": ADMIN_KEY,
                              "ROUTER_HEALTH_INTERVAL_S": "0.5"})


@pytest.fixture(scope="module")
def url(stack) -> str:
    return f"http://{stack.spec('gateway').address}"


def messages(*texts: str) -> list[common_pb2.ChatMessage]:
    """The user's messages with a short assistant reply between them."""
    conversation: list[common_pb2.ChatMessage] = []
    for text in texts:
        if conversation:
            conversation.append(common_pb2.ChatMessage(role=common_pb2.ROLE_ASSISTANT,
                                                       content="I hear you. Tell me more."))
        conversation.append(common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=text))
    return conversation


def chat(url: str, request: router_pb2.ChatRequest, key: str = KEYS[0]
         ) -> tuple[router_pb2.ChatResponse, dict[str, str]]:
    """One grpc-web Chat: the reply and the response metadata."""
    async def call() -> tuple[router_pb2.ChatResponse, dict[str, str]]:
        client = router_connect.RouterServiceClient(url, protocol=ProtocolType.GRPC_WEB)
        with ResponseMetadata() as meta:
            reply = await client.chat(request, headers={"authorization": f"Bearer {key}"})
        return reply, dict(meta.headers)
    return asyncio.run(call())


def stream(url: str, request: router_pb2.ChatRequest, key: str = KEYS[0]
           ) -> tuple[list[router_pb2.ChatStreamResponse], dict[str, str]]:
    """One grpc-web ChatStream of the same fields: its messages and the response metadata."""
    async def call() -> tuple[list[router_pb2.ChatStreamResponse], dict[str, str]]:
        client = router_connect.RouterServiceClient(url, protocol=ProtocolType.GRPC_WEB)
        streamed = router_pb2.ChatStreamRequest.FromString(request.SerializeToString())
        with ResponseMetadata() as meta:
            replies = [m async for m in client.chat_stream(
                streamed, headers={"authorization": f"Bearer {key}"})]
        return replies, dict(meta.headers)
    return asyncio.run(call())


def exact_entries(content: str, prefix: str = PREFIX) -> int:
    """Exact-cache entries (JSON strings) whose reply is ``content``."""
    client = redis.Redis()
    found = 0
    for key in client.scan_iter(f"{prefix}*"):
        if client.type(key) == b"string":
            with_reply = json.loads(client.get(key) or b"{}")
            found += isinstance(with_reply, dict) and with_reply.get("content") == content
    return found


def semantic_entries(text: str) -> int:
    """Semantic-cache entries whose request was ``text`` (an entry packs its request's text)."""
    client = redis.Redis()
    lists = [k for k in client.scan_iter(f"{PREFIX}scache:v1:*") if client.type(k) == b"list"]
    return sum(item.endswith(text.encode()) for k in lists for item in client.lrange(k, 0, -1))


def until(stored: object, what: str) -> None:
    """The store runs after the reply went out: wait for it."""
    deadline = time.monotonic() + 10
    while not stored():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} was not stored"
        time.sleep(0.05)


def streamed_text(replies: list[router_pb2.ChatStreamResponse]) -> str:
    return "".join(m.text for m in replies)


def test_a_repeated_chat_is_an_exact_hit_whole_and_streamed(url: str) -> None:
    request = router_pb2.ChatRequest(messages=messages("Name one healthy habit."),
                                     sampling=GREEDY)
    first, first_meta = chat(url, request)
    assert first_meta["x-cache"] == "MISS"
    assert first.route.reason != "cache" and first.text
    assert first.finish_reason in (common_pb2.FINISH_REASON_STOP, common_pb2.FINISH_REASON_LENGTH)
    until(lambda: exact_entries(first.text), "the reply")
    again, again_meta = chat(url, request)
    assert again_meta["x-cache"] == "HIT" and "x-cache-similarity" not in again_meta
    assert (again.text, again.finish_reason, again.route.model) == (
        first.text, first.finish_reason, first.route.model)
    assert again.route.reason == "cache"
    replies, stream_meta = stream(url, request)
    assert stream_meta["x-cache"] == "HIT"
    assert replies[0].route.model == first.route.model
    assert streamed_text(replies) == first.text
    assert replies[-1].finish_reason == first.finish_reason
    assert replies[-1].usage.completion_tokens == first.usage.completion_tokens


def test_a_repeated_stream_is_an_exact_hit(url: str) -> None:
    request = router_pb2.ChatRequest(messages=messages("Name one morning habit."),
                                     sampling=GREEDY)
    first, first_meta = stream(url, request)
    assert first_meta["x-cache"] == "MISS" and first[0].route.reason != "cache"
    until(lambda: exact_entries(streamed_text(first)), "the streamed reply")
    again, again_meta = stream(url, request)
    assert again_meta["x-cache"] == "HIT" and again[0].route.reason == "cache"
    assert streamed_text(again) == streamed_text(first)


def test_another_api_key_never_sees_the_exact_entry(url: str) -> None:
    request = router_pb2.ChatRequest(messages=messages("Name one evening habit."),
                                     sampling=GREEDY)
    first, _ = chat(url, request)
    until(lambda: exact_entries(first.text), "the reply")
    other, other_meta = chat(url, request, key=KEYS[1])
    assert other_meta["x-cache"] == "MISS" and other.route.reason != "cache"
    until(lambda: exact_entries(other.text) == 1 + (other.text == first.text),
          "the other key's reply")
    _, streamed_meta = stream(url, request, key=KEYS[1])
    assert streamed_meta["x-cache"] == "HIT", "the other key's own entry answers it"


@pytest.fixture(scope="module")
def affirmation(url: str) -> str:
    request = router_pb2.ChatRequest(feature="daily_affirmations", messages=messages(STORED),
                                     sampling=SEMANTIC)
    first, meta = chat(url, request)
    assert meta["x-cache"] == "MISS" and "x-cache-similarity" not in meta
    assert first.finish_reason == common_pb2.FINISH_REASON_STOP
    until(lambda: semantic_entries(STORED), "the affirmation")
    return first.text


def test_a_paraphrase_is_a_semantic_hit_whole_and_streamed(url: str, affirmation: str) -> None:
    request = router_pb2.ChatRequest(feature="daily_affirmations",
                                     messages=messages(PARAPHRASE), sampling=SEMANTIC)
    reply, meta = chat(url, request)
    assert meta["x-cache"] == "HIT"
    assert 0.75 <= float(meta["x-cache-similarity"]) <= 1.0
    assert reply.text == affirmation and reply.route.reason == "cache"
    replies, stream_meta = stream(url, request)
    assert stream_meta["x-cache"] == "HIT" and float(stream_meta["x-cache-similarity"]) >= 0.75
    assert streamed_text(replies) == affirmation


def test_another_api_key_never_sees_the_semantic_entry(url: str, affirmation: str) -> None:
    request = router_pb2.ChatRequest(feature="daily_affirmations",
                                     messages=messages(PARAPHRASE), sampling=SEMANTIC)
    reply, meta = chat(url, request, key=KEYS[1])
    assert meta["x-cache"] == "MISS" and "x-cache-similarity" not in meta
    assert reply.route.reason != "cache"


def semantic_lookups(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10,
                     headers={"Authorization": f"Bearer {ADMIN_KEY}"}).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("gateway_semantic_cache_requests_total{"))


def test_a_crisis_gets_the_crisis_reply_and_is_never_cached(url: str, affirmation: str) -> None:
    lookups = semantic_lookups(url)
    for request in (router_pb2.ChatRequest(messages=messages(*CRISIS), sampling=GREEDY),
                    router_pb2.ChatRequest(feature="daily_affirmations", sampling=SEMANTIC,
                                           messages=messages("Give me an affirmation, I want "
                                                             "to kill myself tonight"))):
        whole = [chat(url, request) for _ in range(2)]
        streamed = [stream(url, request) for _ in range(2)]
        assert [meta["x-cache"] for _, meta in whole + streamed] == ["MISS"] * 4
        assert {meta["x-safety-category"] for _, meta in whole + streamed} == {"self_harm"}
        for reply, _ in whole:
            assert (reply.finish_reason, reply.safety_category) == (
                common_pb2.FINISH_REASON_CONTENT_FILTER, common_pb2.SAFETY_CATEGORY_SELF_HARM)
            assert reply.route.backend == "safety" and "988" in reply.text
        for replies, _ in streamed:
            assert replies[-1].safety_category == common_pb2.SAFETY_CATEGORY_SELF_HARM
            assert streamed_text(replies) == whole[0][0].text
        time.sleep(0.5)  # a store would have run by now
        assert exact_entries(whole[0][0].text) == 0
    assert semantic_lookups(url) == lookups, "a flagged conversation is never looked up"


def test_the_token_budget_refuses_misses_and_hits_spend_nothing(stack) -> None:
    prefix = f"upcoach:test:{uuid.uuid4().hex[:12]}:"
    tpm = 150
    gw = GatewayProcess(stack, {"RATE_LIMIT_TPM": str(tpm), "RATE_LIMIT_RPM": "0",
                                "REDIS_KEY_PREFIX": prefix, "LLM_API_KEY": "tpm-key"})

    def ask(number: int) -> router_pb2.ChatRequest:
        return router_pb2.ChatRequest(messages=messages(f"Name habit number {number}."),
                                      sampling=common_pb2.SamplingParams(temperature=0,
                                                                         max_tokens=6))

    async def call(request: router_pb2.ChatRequest
                   ) -> tuple[router_pb2.ChatResponse | ConnectError, ResponseMetadata]:
        client = router_connect.RouterServiceClient(gw.url, protocol=ProtocolType.GRPC_WEB)
        with ResponseMetadata() as meta:
            try:
                return await client.chat(request, headers={"x-api-key": "tpm-key"}), meta
            except ConnectError as refused:
                return refused, meta

    try:
        answered: list[router_pb2.ChatResponse] = []
        for number in range(10):
            reply, meta = asyncio.run(call(ask(number)))
            if isinstance(reply, ConnectError):
                break
            assert meta.headers["x-ratelimit-limit-tokens"] == str(tpm)
            answered.append(reply)
        assert isinstance(reply, ConnectError), "the budget never refused a chat"
        assert len(answered) >= 1
        assert reply.code == Code.RESOURCE_EXHAUSTED
        [detail] = reply.details
        info = error_details_pb2.RetryInfo.FromString(detail.message_bytes)
        assert 1 <= info.retry_delay.seconds <= 60
        refused_headers = {**meta.headers, **meta.trailers}
        assert refused_headers["x-ratelimit-limit-tokens"] == str(tpm)
        until(lambda: exact_entries(answered[0].text, prefix), "the first reply")
        hit, hit_meta = asyncio.run(call(ask(0)))
        assert not isinstance(hit, ConnectError), "a cache hit needs no budget"
        assert hit_meta.headers["x-cache"] == "HIT" and hit.text == answered[0].text
    finally:
        gw.stop()
