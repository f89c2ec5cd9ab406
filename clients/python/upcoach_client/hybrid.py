"""Hybrid inference: the guide's five modes, on the device (in-process llama.cpp) or the server.

While the server is reachable it decides: each chat first asks the router's DecideInference with
the mode, the conversation (its crisis check reads every user message, the rule the last one)
and whether the on-device model is there, so the rule and its
policy (config/hybrid.yaml: prompt length, what counts as simple) live on the server alone. When
the server cannot be reached (UNAVAILABLE or DEADLINE_EXCEEDED), the client applies the one rule
it keeps, ``offline_decision``: serverOnly fails, onDeviceOnly and auto run on the device,
onDevicePreferred and serverPreferred run on the device when its model is there and fail
otherwise; and a ``feature`` the server once decided is server only (no edge model: mood
analysis, voice coaching, ...) fails for the life of the client rather than run on the device.
A server chat that fails as unreachable before its first chunk is decided again offline. After
such a failure the server counts as offline for ``offline_recheck_s`` seconds, so the next calls
do not wait on it. Once a server reply has started, a failure is raised: a reply
never switches source midway. On the device, model, feature and coaching_context do not apply: it
runs its one model on the messages as given.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from upcoach_client import convert
from upcoach_client.aio import AsyncUpcoachClient, collect
from upcoach_client.api.names import INFERENCE_MODES
from upcoach_client.errors import UpcoachError
from upcoach_client.on_device import OnDeviceModel
from upcoach_client.types import ChatChunk, ChatReply, Decision, MessageLike

_SERVER, _DEVICE = "server", "on_device"


def offline_decision(mode: str, on_device_available: bool) -> Decision:
    """Where a prompt runs while the server is unreachable (the guide's rule, server offline)."""
    if mode == "serverOnly":
        return Decision(_SERVER, "serverOnly: always the server", False)
    if mode == "onDeviceOnly":
        return Decision(_DEVICE, "onDeviceOnly: always the device", False)
    if mode == "auto":
        return Decision(_DEVICE, "auto: the server is unreachable", False)
    if not on_device_available:
        return Decision(_SERVER, f"{mode}: no on-device model and the server is unreachable",
                        False)
    return Decision(_DEVICE, f"{mode}: the server is unreachable, using the on-device model",
                    False)


class AsyncHybridClient:
    """Chats on the device or the server as ``mode`` says."""

    def __init__(self, server: AsyncUpcoachClient, mode: str = "auto", *,
                 on_device: OnDeviceModel | None = None, max_prompt_length: int | None = None,
                 offline_recheck_s: float = 5.0, decide_timeout_s: float = 2.0) -> None:
        if mode not in INFERENCE_MODES:
            raise ValueError(f"mode: {mode!r} is not one of {', '.join(INFERENCE_MODES)}")
        self.server = server
        self.mode = mode
        self.on_device = on_device or OnDeviceModel()
        self.max_prompt_length = max_prompt_length
        self.offline_recheck_s = offline_recheck_s
        self.decide_timeout_s = decide_timeout_s
        self._offline_until = 0.0
        self._server_only: set[str] = set()  # features the server decided have no edge model
        self._context_features: dict[str, str] = {}  # coaching context -> the feature it implies

    @property
    def server_available(self) -> bool:
        """False for a while after the server was found unreachable."""
        return time.monotonic() >= self._offline_until

    def _server_unreachable(self) -> None:
        self._offline_until = time.monotonic() + self.offline_recheck_s

    async def decide(self, prompt: str = "", *, messages: Iterable[MessageLike] | None = None,
                     locale: str = "", more_locales: Sequence[str] = (),
                     feature: str = "", coaching_context: str = "") -> Decision:
        """Where a prompt (or a conversation's last user message) runs now: the server's
        decision (a server-only ``feature``, or the one ``coaching_context`` implies, is always
        the server's), or the offline rule without it."""
        named = feature or (self._context_features.get(coaching_context) if coaching_context
                            else None)
        if self.server_available:
            try:
                decision = await self.server.decide_inference(
                    self.mode, prompt, messages=messages, locale=locale,
                    more_locales=more_locales, feature=feature,
                    coaching_context=coaching_context, on_device_available=self.on_device.available,
                    max_prompt_length=self.max_prompt_length, timeout=self.decide_timeout_s)
            except UpcoachError as exc:
                if not exc.unreachable:
                    raise
                self._server_unreachable()
            else:
                if decision.feature and decision.safety_category is None:  # a crisis: no model
                    if coaching_context and not feature:
                        self._context_features[coaching_context] = decision.feature
                    if decision.edge_model is None:
                        self._server_only.add(decision.feature)
                    else:
                        self._server_only.discard(decision.feature)
                return decision
        if named in self._server_only:
            return Decision(_SERVER, f"{named}: server only, and the server is unreachable",
                            False, feature=named)
        return offline_decision(self.mode, self.on_device.available)

    async def chat_stream(self, messages: Iterable[MessageLike], *, model: str = "",
                          feature: str = "", coaching_context: str = "", locale: str = "",
                          more_locales: Sequence[str] = (), timeout: float | None = None,
                          **sampling: Any) -> AsyncIterator[ChatChunk]:
        """Streams the reply from where the mode sends it; the first chunk names the decision.
        ``locale``, then ``more_locales``, are the languages of a crisis response (the
        server's); ``feature`` and ``coaching_context`` go to the decision too (a server-only
        feature stays there)."""
        turns = convert.as_messages(messages)
        choice = await self.decide(messages=turns, locale=locale, more_locales=more_locales,
                                   feature=feature, coaching_context=coaching_context)
        if not choice.on_device:
            sent = False
            try:
                async for chunk in self.server.chat_stream(
                        turns, model=model, feature=feature, coaching_context=coaching_context,
                        locale=locale, more_locales=more_locales, timeout=timeout, **sampling):
                    if not sent:
                        chunk = ChatChunk(text=chunk.text, route=chunk.route,
                                          decision=choice.reason,
                                          finish_reason=chunk.finish_reason, usage=chunk.usage)
                    sent = True
                    yield chunk
                return
            except UpcoachError as exc:
                if sent or not exc.unreachable:
                    raise
                self._server_unreachable()
                if choice.safety_category:  # a crisis is never left to the device alone
                    yield ChatChunk(text=choice.crisis_response or "", decision=choice.reason,
                                    finish_reason="content_filter",
                                    safety_category=choice.safety_category)
                    return
                if choice.feature and choice.edge_model is None:
                    raise  # the server decided the feature is server only
                choice = offline_decision(self.mode, self.on_device.available)
                if not choice.on_device:
                    raise
        async for chunk in self.on_device.stream(turns, decision=choice.reason, **sampling):
            yield chunk

    async def chat(self, messages: Iterable[MessageLike], **options: Any) -> ChatReply:
        """The whole reply, from where the mode sends it."""
        return await collect(self.chat_stream(messages, **options))

    async def close(self) -> None:
        await self.on_device.close()
        await self.server.close()
