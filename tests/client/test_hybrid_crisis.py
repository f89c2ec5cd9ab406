"""A conversation the server's crisis check flagged never falls back to the on-device model:
when the server then fails before its first chunk, the hybrid client answers with the crisis
response it already has. Against stand-ins for the server and the device (what is under test is
the client's own fallback rule)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from upcoach_client import AsyncHybridClient, UpcoachError
from upcoach_client.types import ChatChunk, Decision

CRISIS = "Please reach out now: call or text 988."


class FlaggingServer:
    """Decides "server" with a crisis category, then is unreachable for the chat."""

    async def decide_inference(self, *args: Any, **kwargs: Any) -> Decision:
        return Decision("server", "crisis check: self_harm", False, safety_category="self_harm",
                        crisis_response=CRISIS)

    async def chat_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatChunk]:
        raise UpcoachError(grpc.StatusCode.UNAVAILABLE, "shutting down")
        yield  # an async generator

    async def close(self) -> None:
        pass


class ReadyDevice:
    available = True

    def __init__(self) -> None:
        self.asked = 0

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatChunk]:
        self.asked += 1
        yield ChatChunk(text="on-device reply", source="on_device", finish_reason="stop")

    async def close(self) -> None:
        pass


async def test_a_flagged_conversation_gets_the_crisis_response_not_the_device() -> None:
    for mode in ("auto", "onDevicePreferred", "serverPreferred"):
        device = ReadyDevice()
        client = AsyncHybridClient(FlaggingServer(), mode, on_device=device)  # type: ignore[arg-type]
        chunks = [c async for c in client.chat_stream([("user", "I want to end it all")])]
        assert device.asked == 0, mode
        assert [(c.text, c.finish_reason, c.safety_category) for c in chunks] == [
            (CRISIS, "content_filter", "self_harm")], mode


class ServerOnlyDecider(FlaggingServer):
    """Decides "server" for a feature with no edge model (edge_model None), or for a long prompt
    of a feature that has one, then is unreachable for the chat."""

    async def decide_inference(self, *args: Any, feature: str = "", coaching_context: str = "",
                               **kwargs: Any) -> Decision:
        feature = feature or {"mood": "mood_analysis", "habits": "habit_tips"}.get(
            coaching_context, "")
        edge = None if feature == "mood_analysis" else "smollm-360m"
        return Decision("server", "auto: long prompt", False, edge_model=edge,
                        feature=feature or None)


class OldRouter(ServerOnlyDecider):
    """A router from before coaching_context: it ignores the context and names no feature."""

    async def decide_inference(self, *args: Any, feature: str = "", coaching_context: str = "",
                               **kwargs: Any) -> Decision:
        return await super().decide_inference(*args, feature=feature, **kwargs)


async def mood_fails_and_tips_run_on_the_device(client: AsyncHybridClient,
                                                 device: ReadyDevice) -> None:
    """A mood-analysis chat fails as unreachable without the device; a habit tip runs there."""
    with pytest.raises(UpcoachError) as caught:
        [c async for c in client.chat_stream([("user", "how is my mood?")],
                                             feature="mood_analysis")]
    assert caught.value.unreachable and device.asked == 0
    tip = [c async for c in client.chat_stream([("user", "a tip")], feature="habit_tips")]
    assert device.asked == 1 and tip[0].text == "on-device reply"


async def test_a_feature_the_server_decided_server_only_never_falls_back_to_the_device() -> None:
    device = ReadyDevice()
    client = AsyncHybridClient(ServerOnlyDecider(), "serverPreferred",  # type: ignore[arg-type]
                               on_device=device)
    await mood_fails_and_tips_run_on_the_device(client, device)


class GoingDown(ServerOnlyDecider):
    """ServerOnlyDecider until ``down``; then every call is unreachable, decisions too."""

    down = False

    async def decide_inference(self, *args: Any, **kwargs: Any) -> Decision:
        if self.down:
            raise UpcoachError(grpc.StatusCode.UNAVAILABLE, "connection refused")
        return await super().decide_inference(*args, **kwargs)


async def test_a_feature_the_server_once_decided_server_only_stays_off_the_device_offline() -> None:
    server, device = GoingDown(), ReadyDevice()
    client = AsyncHybridClient(server, "auto", on_device=device)  # type: ignore[arg-type]
    for feature in ("mood_analysis", "habit_tips"):
        assert (await client.decide("a question", feature=feature)).target == "server"
    assert (await client.decide("a question", coaching_context="mood")).feature == "mood_analysis"
    server.down = True
    offline = await client.decide("how is my mood?", feature="mood_analysis")
    assert offline.target == "server" and "server only" in offline.reason
    by_context = await client.decide("how is my mood?", coaching_context="mood")
    assert by_context.target == "server" and by_context.feature == "mood_analysis"
    assert (await client.decide("a tip", coaching_context="habits")).on_device, "never seen"
    await mood_fails_and_tips_run_on_the_device(client, device)


async def test_a_context_an_old_router_ignored_keeps_the_offline_rule() -> None:
    """Without the decision's feature nothing is remembered, and the device is the fallback."""
    device = ReadyDevice()
    client = AsyncHybridClient(OldRouter(), "serverPreferred",  # type: ignore[arg-type]
                               on_device=device)
    reply = [c async for c in client.chat_stream([("user", "how is my mood?")],
                                                 coaching_context="mood")]
    assert device.asked == 1 and reply[0].text == "on-device reply"
