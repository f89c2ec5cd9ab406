"""What both embedded llama.cpp engines share: the GGUF's chat template, tokenizing (off the
event loop for long prompts), the fit in the context window, and their pool's status."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.common.errors import ConfigError, OutOfRange
from upcoach_llm.engines.base import EngineHealth
from upcoach_llm.engines.context_pool import ContextPool
from upcoach_llm.engines.llama_cpp_settings import LlamaSettings

# Prompts longer than this are templated and tokenized off the event loop.
INLINE_PROMPT_CHARS = 16_000


def chat_formatter(llama: llama_cpp.Llama, settings: LlamaSettings) -> Jinja2ChatFormatter:
    """The GGUF's own chat template (tokenizer.chat_template)."""
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ConfigError(f"GENERATION_MODEL_PATH: {settings.model_path} has no "
                          "tokenizer.chat_template in its metadata")

    def token_text(token: int) -> str:
        if token < 0:
            return ""
        return llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    return Jinja2ChatFormatter(template=template, eos_token=token_text(llama.token_eos()),
                               bos_token=token_text(llama.token_bos()))


def tokenize(formatter: Jinja2ChatFormatter, tokenizer: llama_cpp.Llama,
             messages: list[Message]) -> list[int]:
    """The chat-templated prompt as tokens (tokenizing reads only the shared vocabulary)."""
    prompt = formatter(messages=[{"role": m.role, "content": m.content} for m in messages]).prompt
    return tokenizer.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)


async def prompt_tokens(formatter: Jinja2ChatFormatter, tokenizer: llama_cpp.Llama,
                        messages: list[Message]) -> list[int]:
    """``tokenize``, in a worker thread when the prompt is long."""
    if sum(len(m.content) for m in messages) > INLINE_PROMPT_CHARS:
        return await asyncio.to_thread(tokenize, formatter, tokenizer, messages)
    return tokenize(formatter, tokenizer, messages)


def fitted(prompt_tokens: int, sampling: Sampling, n_ctx: int) -> Sampling:
    """The sampling with which the prompt and the reply fit n_ctx: a default max_tokens
    shortened to the room left (as OpenAI's and Ollama's servers do); OutOfRange naming
    ``messages`` when the prompt leaves no room, or ``sampling.max_tokens`` when the caller's
    own value does not fit."""
    if prompt_tokens >= n_ctx:
        raise OutOfRange(
            f"the prompt is {prompt_tokens} tokens after the chat template, "
            f"which does not fit the model's context of {n_ctx} tokens", field="messages")
    room = n_ctx - prompt_tokens
    if sampling.max_tokens <= room:
        return sampling
    if sampling.max_tokens_defaulted:
        return replace(sampling, max_tokens=room)
    raise OutOfRange(
        f"{sampling.max_tokens} tokens do not fit after a prompt of "
        f"{prompt_tokens} tokens in the model's context of {n_ctx}; "
        f"at most {room}", field="sampling.max_tokens")


class PooledLlamaStatus:
    """``occupancy`` and ``health`` of an engine whose ``pool`` exists while its model is loaded."""

    pool: ContextPool | None
    settings: LlamaSettings

    def occupancy(self) -> tuple[int, int] | None:
        pool = self.pool
        return (pool.busy, pool.waiting) if pool is not None else (0, 0)

    async def health(self) -> EngineHealth:
        if self.pool is None:
            return EngineHealth(healthy=False, detail="the model is not loaded")
        return EngineHealth(healthy=True, models=(self.settings.model_name,))
