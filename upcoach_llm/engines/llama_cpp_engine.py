"""The embedded chat engine: llama.cpp (llama-cpp-python) running a GGUF inside this process.

A pool of ``GENERATION_PARALLEL`` llama contexts over one mmapped model; each request holds one
context from its first token to its last, because a context is not thread-safe. Generation runs
token by token on the context's own thread, which hands each piece of text to the event loop as
soon as it is decoded; closing the stream sets a flag checked after every token, so generation
stops within a token and the context goes back to the pool.

Each context is only ever run by one thread, the same one from warm-up on: llama.cpp's OpenMP
build gives every calling thread its own team of workers, and once a process has more workers
than CPUs they stop spinning between tokens. Measured here (2 CPUs, 2 threads): ~75 tokens/s from
one thread, ~30 from any thread once a second one had run the model.

A context keeps the KV cache of its last request, and a new request that shares its prefix
(the same conversation, one turn longer) evaluates only the rest. Reproducible requests
(temperature 0, or a seed) evaluate their whole prompt instead: the same request then gives the
same reply whatever ran on the context before.

JSON response formats and the penalties go through llama-cpp-python's own sampler (its grammar
and penalty options, with the grammars of llama_sampling); log probabilities are the batched
engine's alone (GENERATION_BATCHED, the default): this engine refuses them.
"""

from __future__ import annotations

import asyncio
import codecs
import contextvars
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.common.errors import InvalidArgument, NotFound, Unavailable
from upcoach_llm.common.logging import get_logger
from upcoach_llm.engines.base import ChatEngine, Finished, TextChunk
from upcoach_llm.engines.context_pool import ContextPool
from upcoach_llm.engines.llama_cpp_settings import LlamaSettings
from upcoach_llm.engines.llama_loader import open_llama
from upcoach_llm.engines.llama_prompt import (
    PooledLlamaStatus,
    chat_formatter,
    fitted,
    prompt_tokens,
    tokenize,
)
from upcoach_llm.engines.llama_sampling import grammar_for, parsed_grammar, seed32
from upcoach_llm.engines.stop_sequences import StopScanner

log = get_logger(__name__)

_WARM_UP = [Message(role="user", content="Hi")]


@dataclass(eq=False)
class _Slot:
    """A llama context and the one thread that runs it."""

    llama: llama_cpp.Llama
    thread: ThreadPoolExecutor


@dataclass(eq=False)
class _Job:
    """One generation, shared by the event loop (which reads) and its worker thread."""

    prompt: list[int]
    sampling: Sampling
    started: float
    post: Callable[[object], object]
    grammar: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    generated: int = 0
    abandoned: bool = False

    def emit(self, item: object) -> None:
        """Hands an item to the event loop; a closed loop counts as a cancellation."""
        try:
            self.post(item)
        except RuntimeError:
            self.cancel.set()


class LlamaCppEngine(PooledLlamaStatus, ChatEngine):
    """Serves the catalog model ``settings.model_name`` from the GGUF at ``settings.model_path``."""

    def __init__(self, settings: LlamaSettings) -> None:
        self.settings = settings
        self.pool: ContextPool[_Slot] | None = None
        self._formatter: Jinja2ChatFormatter | None = None
        self._n_ctx = settings.n_ctx
        self._jobs: set[_Job] = set()

    async def load(self) -> None:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        slots: list[_Slot] = []
        try:
            for index in range(self.settings.parallel):
                thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{index}")
                slots.append(_Slot(await loop.run_in_executor(thread, open_llama, self.settings),
                                   thread))
            self._formatter = chat_formatter(slots[0].llama, self.settings)
            self._n_ctx = slots[0].llama.n_ctx()
            for slot in slots:
                await loop.run_in_executor(slot.thread, self._warm_up, slot.llama)
        except BaseException:
            await _release(slots)
            raise
        self.pool = ContextPool(slots, self.settings.max_queue, what="llama context",
                                limit_name="GENERATION_MAX_QUEUE",
                                wait_limit_name="GENERATION_QUEUE_TIMEOUT_S",
                                max_wait_s=self.settings.queue_timeout_s)
        log.info("model loaded", extra={"fields": {
            "model": self.settings.model_name, "path": str(self.settings.model_path),
            "contexts": len(slots), "n_ctx": self._n_ctx,
            "n_threads": self.settings.n_threads,
            "seconds": round(time.perf_counter() - started, 3)}})

    def _warm_up(self, llama: llama_cpp.Llama) -> None:
        assert self._formatter is not None
        tokens = llama.generate(tokenize(self._formatter, llama, _WARM_UP), temp=0.0)
        next(tokens)
        tokens.close()

    async def stream(self, model: str, messages: list[Message],
                     sampling: Sampling) -> AsyncIterator[TextChunk | Finished]:
        if model != self.settings.model_name:
            raise NotFound(f"{model!r} is not served by the embedded llama.cpp engine, "
                           f"which serves {self.settings.model_name!r}", field="model")
        if sampling.logprobs:
            raise InvalidArgument("log probabilities need the batched llama.cpp engine "
                                  "(GENERATION_BATCHED=true)", field="sampling.logprobs")
        grammar = await grammar_for(sampling.response_format)
        pool = self.pool
        if pool is None:
            raise Unavailable("the llama.cpp engine is not loaded")
        started = time.perf_counter()
        assert self._formatter is not None
        prompt = await prompt_tokens(self._formatter, pool.items[0].llama, messages)
        sampling = fitted(len(prompt), sampling, self._n_ctx)

        slot = await pool.acquire()
        loop = asyncio.get_running_loop()
        pending: deque[object] = deque()
        wake = asyncio.Event()

        def push(item: object) -> None:
            pending.append(item)
            wake.set()

        job = _Job(prompt, sampling, started, partial(loop.call_soon_threadsafe, push), grammar)
        try:
            worker = loop.run_in_executor(slot.thread, self._generate, slot.llama, job)
        except BaseException:
            pool.release(slot)
            raise
        self._jobs.add(job)
        worker.add_done_callback(lambda _: self._job_done(pool, slot, job))
        worker.add_done_callback(partial(_log_cancelled, job), context=contextvars.copy_context())

        finished = False
        try:
            while True:
                if not pending:
                    wake.clear()
                    await wake.wait()
                item = pending.popleft()
                if isinstance(item, TextChunk):
                    if pending and isinstance(pending[0], TextChunk):
                        parts = [item.text]
                        while pending and isinstance(pending[0], TextChunk):
                            parts.append(pending.popleft().text)  # type: ignore[union-attr]
                        item = TextChunk("".join(parts))
                    yield item
                elif isinstance(item, Finished):
                    finished = True
                    yield item
                    return
                else:
                    finished = True
                    raise item  # type: ignore[misc]
        finally:
            if not finished:
                job.cancel.set()

    def _job_done(self, pool: ContextPool[_Slot], slot: _Slot, job: _Job) -> None:
        self._jobs.discard(job)
        pool.release(slot)

    def _generate(self, llama: llama_cpp.Llama, job: _Job) -> None:
        """Worker thread: runs the generation and hands its end (or its error) to the loop."""
        try:
            result: object = self._run(llama, job)
        except Exception as exc:  # noqa: BLE001 - re-raised on the event loop, in the caller's stream
            result = exc
        if result is not None:
            job.emit(result)

    def _run(self, llama: llama_cpp.Llama, job: _Job) -> Finished | None:
        """The token loop; returns None when the stream was closed before the end."""
        sampling = job.sampling
        llama.set_seed(seed32(sampling.seed))
        if sampling.reproducible:
            # A reused KV prefix changes how the rest of the prompt is batched, and with it the
            # logits in their last bits: enough to flip a greedy choice. Evaluate it afresh.
            llama.reset()
        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        if job.grammar:  # llama-cpp-python adds its grammar sampler unchecked: NULL would crash
            llama_cpp.llama_sampler_free(parsed_grammar(vocab, job.grammar))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopScanner(sampling.stop)
        reason: str = "length"
        stopped = False
        first_text_at: float | None = None
        tokens = llama.generate(
            job.prompt, top_p=sampling.top_p, temp=sampling.temperature,
            repeat_penalty=sampling.repeat_penalty, frequency_penalty=sampling.frequency_penalty,
            presence_penalty=sampling.presence_penalty,
            grammar=LlamaGrammar.from_string(job.grammar) if job.grammar else None)
        try:
            for token in tokens:
                if job.cancel.is_set():
                    job.abandoned = True
                    return None
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    reason = "stop"
                    break
                job.generated += 1
                text, stopped = stops.push(decoder.decode(llama.detokenize([token])))
                if text:
                    if first_text_at is None:
                        first_text_at = time.perf_counter()
                    job.emit(TextChunk(text))
                if stopped:
                    reason = "stop"
                    break
                if job.generated >= sampling.max_tokens:
                    break
        finally:
            tokens.close()
        if not stopped:
            tail, stopped = stops.push(decoder.decode(b"", final=True))
            tail += "" if stopped else stops.flush()
            if tail:
                first_text_at = first_text_at or time.perf_counter()
                job.emit(TextChunk(tail))
        ended = time.perf_counter()
        return Finished(reason=reason, prompt_tokens=len(job.prompt),  # type: ignore[arg-type]
                        completion_tokens=job.generated,
                        time_to_first_token_ms=((first_text_at or ended) - job.started) * 1000,
                        generation_ms=(ended - job.started) * 1000)

    async def close(self) -> None:
        for job in list(self._jobs):
            job.cancel.set()
        pool, self.pool = self.pool, None
        if pool is not None:
            await _release(list(pool.items))


async def _release(slots: list[_Slot]) -> None:
    """Waits for each context's thread to finish its work, then frees the context."""
    for slot in slots:
        await asyncio.to_thread(slot.thread.shutdown, wait=True)
        slot.llama.close()


def _log_cancelled(job: _Job, _future: object) -> None:
    if job.abandoned:
        log.info("generation cancelled", extra={"fields": {
            "completion_tokens": job.generated,
            "ms": round((time.perf_counter() - job.started) * 1000, 1)}})
