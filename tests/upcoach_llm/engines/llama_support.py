"""What the llama engine tests share: the model, prompts, and a whole reply read as the
services read it."""

from __future__ import annotations

from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.engines.base import ChatEngine, Finished, TextChunk

MODEL = "smollm2-135m-instruct"
N_CTX = 512
STORY = [Message("user", "Write a long story about a habit coach who helps a runner.")]
PROMPTS = [
    [Message("user", "Give me three tips to drink more water.")],
    [Message("system", "You are a concise coach."),
     Message("user", "How do I start meditating?")],
    [Message("user", "Write a short poem about morning walks.")],
]


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
