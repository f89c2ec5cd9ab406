"""The blocking hybrid client: AsyncHybridClient driven from a private event-loop thread.

    with HybridClient(mode="serverPreferred") as client:
        reply = client.chat([("user", "One tip for better sleep?")], max_tokens=64)
        print(reply.source, reply.decision, reply.text)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from upcoach_client.aio import AsyncUpcoachClient
from upcoach_client.config import ServerAddresses
from upcoach_client.hybrid import AsyncHybridClient
from upcoach_client.loop_thread import LoopThread
from upcoach_client.on_device import OnDeviceModel
from upcoach_client.types import ChatChunk, ChatReply, Decision, MessageLike


class HybridClient:
    """Chats on the device or the server as ``mode`` says, with blocking calls."""

    def __init__(self, addresses: ServerAddresses | None = None, mode: str = "auto", *,
                 on_device: OnDeviceModel | None = None, max_prompt_length: int | None = None,
                 offline_recheck_s: float = 5.0, decide_timeout_s: float = 2.0) -> None:
        self._thread = LoopThread()

        async def build() -> AsyncHybridClient:
            return AsyncHybridClient(AsyncUpcoachClient(addresses), mode, on_device=on_device,
                                     max_prompt_length=max_prompt_length,
                                     offline_recheck_s=offline_recheck_s,
                                     decide_timeout_s=decide_timeout_s)

        try:
            self._client = self._thread.run(build())
        except BaseException:
            self._thread.stop()
            raise

    @property
    def mode(self) -> str:
        return self._client.mode

    def decide(self, prompt: str = "", *, messages: Iterable[MessageLike] | None = None,
               locale: str = "", more_locales: Sequence[str] = (),
               feature: str = "", coaching_context: str = "") -> Decision:
        """Where a prompt (or a conversation's last user message) runs now (asks the server
        while it is reachable)."""
        return self._thread.run(self._client.decide(prompt, messages=messages, locale=locale,
                                                    more_locales=more_locales, feature=feature,
                                                    coaching_context=coaching_context))

    def chat_stream(self, messages: Iterable[MessageLike], **options: Any) -> Iterator[ChatChunk]:
        return self._thread.iterate(self._client.chat_stream(messages, **options))

    def chat(self, messages: Iterable[MessageLike], **options: Any) -> ChatReply:
        return self._thread.run(self._client.chat(messages, **options))

    def close(self) -> None:
        self._thread.run(self._client.close())
        self._thread.stop()

    def __enter__(self) -> HybridClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
