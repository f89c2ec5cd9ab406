"""Hybrid inference: the guide's five modes, on the device (in-process llama.cpp) or the server.

Each chat is decided by services/router/hybrid.py (the same function the router's
DecideInference runs) with the mode, the last user message, whether the server is reachable and
whether the on-device model is there. When a server call fails as unreachable (UNAVAILABLE or
DEADLINE_EXCEEDED) before its first chunk, the decision is taken again with the server offline
and the mode says what happens: serverOnly and onDevicePreferred (whose device model is missing)
raise the error; serverPreferred and auto run on the device. After such a failure the server
counts as offline for ``offline_recheck_s`` seconds, so the next calls do not wait on it. Once a
server reply has started, a failure is raised: a reply never switches source midway. On the
device, model, feature and coaching_context do not apply: it runs its one model on the messages
as given.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from services.common.config import load_config_file
from services.common.names import INFERENCE_MODES
from services.router.hybrid import InferenceDecision, decide
from services.router.policy import HybridFile
from upcoach_client import convert
from upcoach_client.aio import AsyncUpcoachClient, collect
from upcoach_client.errors import UpcoachError
from upcoach_client.on_device import OnDeviceModel
from upcoach_client.types import ChatChunk, ChatReply, MessageLike


class AsyncHybridClient:
    """Chats on the device or the server as ``mode`` says."""

    def __init__(self, server: AsyncUpcoachClient, mode: str = "auto", *,
                 on_device: OnDeviceModel | None = None, policy: HybridFile | None = None,
                 max_prompt_length: int | None = None, offline_recheck_s: float = 5.0) -> None:
        if mode not in INFERENCE_MODES:
            raise ValueError(f"mode: {mode!r} is not one of {', '.join(INFERENCE_MODES)}")
        self.server = server
        self.mode = mode
        self.on_device = on_device or OnDeviceModel()
        self.policy = policy or load_config_file(HybridFile, "hybrid.yaml")
        self.max_prompt_length = max_prompt_length
        self.offline_recheck_s = offline_recheck_s
        self._offline_until = 0.0

    @property
    def server_available(self) -> bool:
        """False for a while after the server was found unreachable."""
        return time.monotonic() >= self._offline_until

    def decide(self, prompt: str, *, server_available: bool | None = None) -> InferenceDecision:
        """Where a prompt would run now."""
        online = self.server_available if server_available is None else server_available
        return decide(self.mode, prompt=prompt, server_available=online,
                      on_device_available=self.on_device.available, policy=self.policy,
                      max_prompt_length=self.max_prompt_length)

    async def chat_stream(self, messages: Iterable[MessageLike], *, model: str = "",
                          feature: str = "", coaching_context: str = "",
                          timeout: float | None = None, **sampling: Any,
                          ) -> AsyncIterator[ChatChunk]:
        """Streams the reply from where the mode sends it; the first chunk names the decision."""
        turns = convert.as_messages(messages)
        choice = self.decide(convert.last_user_text(turns))
        if not choice.on_device:
            sent = False
            try:
                async for chunk in self.server.chat_stream(
                        turns, model=model, feature=feature, coaching_context=coaching_context,
                        timeout=timeout, **sampling):
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
                self._offline_until = time.monotonic() + self.offline_recheck_s
                choice = self.decide(convert.last_user_text(turns), server_available=False)
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
