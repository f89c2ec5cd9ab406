"""The token budget's Redis scripts against the real Redis: reserve, refuse, count, settle, expiry.

Each test has its own key prefix, so budgets never meet across tests or runs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.upcoach_llm.gateway.conftest import delete_keys
from upcoach_llm.api import common_pb2, router_pb2
from upcoach_llm.dev.ports import free_port
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.metrics.registry import GatewayMetrics
from upcoach_llm.gateway.security import token_budget
from upcoach_llm.gateway.security.token_budget import (
    FLUSH_TOKENS,
    UNCOUNTED,
    TokenBudget,
    estimate_prompt,
    estimate_text,
)
from upcoach_llm.gateway.store.link import RedisLink

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    value = f"upcoach:test:{uuid.uuid4().hex[:12]}:"
    yield value
    await delete_keys(value)


@pytest.fixture
async def links() -> AsyncIterator[list[RedisLink]]:
    made: list[RedisLink] = []
    yield made
    for link in made:
        await link.close()


@pytest.fixture
def budget(prefix: str, links: list[RedisLink]):
    def make(tpm: int, *, url: str = REDIS, fail_open: bool = True,
             window_ms: int = token_budget.WINDOW_MS) -> TokenBudget:
        link = RedisLink(url, 2.0)  # a loaded CI machine: a timeout would fail open, silently
        links.append(link)
        return TokenBudget(link, tpm, prefix, GatewayMetrics(), fail_open=fail_open,
                           window_ms=window_ms)
    return make


async def charged(budget: TokenBudget, client: str) -> int:
    """Tokens charged to the client's current window, read straight from Redis."""
    value = await budget._link.client.hget(budget._prefix + client, "t")
    return int(value or 0)


def test_estimates_are_characters_over_four_plus_the_template() -> None:
    assert [estimate_text(n) for n in (0, 1, 4, 5, 8)] == [0, 1, 1, 2, 2]
    assert estimate_prompt(["Hello there", "hi"]) == (3 + 4) + (1 + 4)


async def test_reserve_admits_until_the_budget_then_refuses_with_headers(budget) -> None:
    tpm = budget(100)
    spends = [await tpm.reserve("key-a", 30) for _ in range(3)]
    assert [s.headers()["X-RateLimit-Remaining-Tokens"] for s in spends] == ["70", "40", "10"]
    assert spends[0].headers()["X-RateLimit-Limit-Tokens"] == "100"
    assert all("Retry-After" not in s.headers() for s in spends)
    with pytest.raises(APIError) as refused:
        await tpm.reserve("key-a", 11)
    error = refused.value
    assert error.status == 429 and error.code == "rate_limit_exceeded"
    assert error.headers["X-RateLimit-Remaining-Tokens"] == "10"
    assert 59 <= int(error.headers["Retry-After"]) <= 60
    assert error.headers["X-RateLimit-Reset-Tokens"] == error.headers["Retry-After"]
    assert await charged(tpm, "key-a") == 90, "a refusal charges nothing"
    assert (await tpm.reserve("key-a", 10)).headers()["X-RateLimit-Remaining-Tokens"] == "0"
    assert (await tpm.reserve("key-b", 100)).headers()["X-RateLimit-Remaining-Tokens"] == "0", \
        "budgets are per client"


async def test_a_prompt_larger_than_the_budget_is_refused_without_retry_after(budget) -> None:
    tpm = budget(50)
    with pytest.raises(APIError) as refused:
        await tpm.reserve("key-a", 51)
    assert refused.value.status == 429 and refused.value.code == "request_too_large"
    assert "Retry-After" not in refused.value.headers
    assert await charged(tpm, "key-a") == 0


async def test_settle_replaces_the_estimate_with_the_usage(budget) -> None:
    tpm = budget(1000)
    low = await tpm.reserve("key-a", 10)
    await low.settle(prompt_tokens=25, completion_tokens=40)
    assert await charged(tpm, "key-a") == 65
    high = await tpm.reserve("key-a", 100)
    await high.settle(prompt_tokens=20, completion_tokens=5)
    assert await charged(tpm, "key-a") == 90
    await high.settle(prompt_tokens=999, completion_tokens=999)
    assert await charged(tpm, "key-a") == 90, "a request settles once"


async def test_a_settle_cancelled_mid_write_still_lands(budget) -> None:
    """A client leaving while the settle's write is in flight cancels the settle, not the write."""
    tpm = budget(1000)
    spend = await tpm.reserve("key-a", 10)
    settling = asyncio.ensure_future(spend.settle(prompt_tokens=25, completion_tokens=40))
    await asyncio.sleep(0)  # the write has been sent
    settling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settling
    for _ in range(100):
        if await charged(tpm, "key-a") == 65:
            break
        await asyncio.sleep(0.01)
    assert await charged(tpm, "key-a") == 65


async def test_streamed_text_is_counted_in_batches(budget) -> None:
    tpm = budget(1000)
    spend = await tpm.reserve("key-a", 10)
    for _ in range(FLUSH_TOKENS - 1):
        await spend.relayed("abcd")  # one token each
    assert await charged(tpm, "key-a") == 10, "nothing written before the batch is full"
    await spend.relayed("abcd")
    assert await charged(tpm, "key-a") == 10 + FLUSH_TOKENS
    await spend.relayed("ab")
    await asyncio.sleep(token_budget.FLUSH_S)
    await spend.relayed("cd")
    assert await charged(tpm, "key-a") == 10 + FLUSH_TOKENS + 1, "a slow stream writes in time"
    await spend.relayed("", tokens=3)  # a chunk with log probabilities counts them
    await spend.settle(prompt_tokens=12, completion_tokens=40)
    assert await charged(tpm, "key-a") == 52


async def test_a_stream_without_usage_keeps_what_was_relayed(budget) -> None:
    tpm = budget(1000)
    spend = await tpm.reserve("key-a", 10)
    for _ in range(5):
        await spend.relayed("four")
    await spend.close()
    assert await charged(tpm, "key-a") == 15
    await spend.relayed("more text that came after the end")
    await spend.close()
    assert await charged(tpm, "key-a") == 15


async def test_concurrent_requests_on_two_replicas_share_one_budget(budget) -> None:
    replicas = [budget(100), budget(100)]
    attempts = [replicas[i % 2].reserve("key-a", 7) for i in range(40)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, APIError) and r.status == 429]
    assert len(admitted) == 100 // 7 and len(admitted) + len(refused) == 40
    assert await charged(replicas[0], "key-a") == 7 * (100 // 7)


async def test_the_window_expires_and_late_charges_go_to_the_next(budget) -> None:
    # The calls after each window opens must all land in it: 1.5 s leaves room for Redis round
    # trips on a loaded machine (300 ms did not always); the sleep outlasts it whatever the load.
    tpm = budget(100, window_ms=1500)
    early = await tpm.reserve("key-a", 60)
    refund = await tpm.reserve("key-a", 40)
    with pytest.raises(APIError):
        await tpm.reserve("key-a", 1)
    await asyncio.sleep(1.6)
    assert await charged(tpm, "key-a") == 0
    await refund.settle(prompt_tokens=1, completion_tokens=1)
    assert await charged(tpm, "key-a") == 0, "a refund never credits a window it did not charge"
    await early.settle(prompt_tokens=60, completion_tokens=25)
    assert await charged(tpm, "key-a") == 25, "tokens learned late go to the current window"
    fresh = await tpm.reserve("key-a", 75)
    assert fresh.headers()["X-RateLimit-Remaining-Tokens"] == "0"
    assert 0 < await tpm._link.client.pttl(tpm._prefix + "key-a") <= 1500


async def test_off_means_no_redis_call(budget) -> None:
    dead = budget(0, url=f"redis://127.0.0.1:{free_port()}/0", fail_open=False)
    spend = await dead.reserve("key-a", 10)
    assert spend is UNCOUNTED and spend.headers() == {}
    await spend.relayed("text that is not counted")
    await spend.settle(prompt_tokens=10, completion_tokens=10)


async def test_redis_down_follows_fail_open(budget, caplog) -> None:
    caplog.set_level(logging.WARNING)
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert await budget(100, url=url, fail_open=True).reserve("key-a", 10) is UNCOUNTED
    assert "token budget unavailable: allowing requests (fail open)" in caplog.text
    with pytest.raises(APIError) as refused:
        await budget(100, url=url, fail_open=False).reserve("key-a", 10)
    assert refused.value.status == 503


async def test_following_the_routers_stream(budget) -> None:
    tpm = budget(1000)
    route = router_pb2.RouteDecision(model="m")
    settled = await tpm.reserve("key-a", 10)
    for message in (router_pb2.ChatStreamResponse(route=route, text="abcdefgh"),
                    router_pb2.ChatStreamResponse(
                        text="x", logprobs=[common_pb2.TokenLogprob(token="x")] * 5),
                    router_pb2.ChatStreamResponse(
                        finish_reason=common_pb2.FINISH_REASON_STOP,
                        usage=common_pb2.Usage(prompt_tokens=7, completion_tokens=9))):
        await settled.follow(message)
        if message.logprobs:
            assert settled.charged == 10 + 2 + 5, "log probabilities count one token each"
    assert await charged(tpm, "key-a") == 16
    no_usage = await tpm.reserve("key-b", 10)
    await no_usage.follow(router_pb2.ChatStreamResponse(text="abcd"))
    await no_usage.follow(router_pb2.ChatStreamResponse(
        finish_reason=common_pb2.FINISH_REASON_STOP))
    assert await charged(tpm, "key-b") == 11, "a finish without usage keeps the estimates"
