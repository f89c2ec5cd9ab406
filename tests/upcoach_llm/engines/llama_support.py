"""What the llama engine tests share: a whole reply, read as the services read it."""

from __future__ import annotations

from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.engines.base import ChatEngine, Finished, TextChunk


async def collect(engine: ChatEngine, messages: list[Message], sampling: Sampling,
                  model: str) -> tuple[list[str], Finished]:
    """The text chunks and the one Finished of a reply; nothing may follow Finished."""
    chunks: list[str] = []
    finished: list[Finished] = []
    async for item in engine.stream(model, messages, sampling):
        assert not finished, "nothing may follow Finished"
        if isinstance(item, TextChunk):
            chunks.append(item.text)
        else:
            finished.append(item)
    assert len(finished) == 1
    return chunks, finished[0]
