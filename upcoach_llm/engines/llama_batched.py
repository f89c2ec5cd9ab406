"""The embedded chat engine with continuous batching: one llama context decodes every request.

``GENERATION_PARALLEL`` sequence slots share one llama context (n_seq_max = GENERATION_PARALLEL)
and one scheduler thread. Each step, the scheduler builds one ``llama_batch`` holding, for every
active sequence, either the next chunk of its prompt or its last sampled token, calls
``llama_decode`` once, then samples each sequence that got logits with its own sampler chain.
A request waits for a free slot in a ContextPool (so GENERATION_MAX_QUEUE and
GENERATION_QUEUE_TIMEOUT_S answer ResourceExhausted as with one context per request), joins
between two steps, and leaves when it ends or its stream is closed, freeing its KV cells.

Prompts are fed in chunks of at most ``PREFILL_CHUNK`` tokens, one prompt per step, the one
with the fewest tokens left first: a long prompt delays the sequences already generating by at
most one chunk (a few tens of milliseconds) per step, and prompts that arrive together get their
first token one after the other, shortest first, rather than all at the end. On a CPU a step
costs about its tokens (SmolLM2's Q4_1 matmuls run token by token; batching saves only the
fixed cost of a step), so a second prompt in the step would delay the first prompt's first
token by all it costs and save the second only that fixed cost; only a prompt with at most
``PREFILL_JOIN_TOKENS`` tokens left (one taking a shared prefix, below) joins another's step,
within ``PREFILL_TOKENS_PER_STEP`` prompt tokens in all.

n_ctx is split, not shared: the context holds LLAMA_N_CTX x GENERATION_PARALLEL cells as one KV
stream per sequence (kv_unified off), so each request may use up to LLAMA_N_CTX tokens, prompt
and reply, as with one context per request, whatever the others use. Separate streams also keep
each sequence's attention laid out as if it ran alone: in a unified cache its cells land
wherever the others left room, which changes the sums in their last bits and flips greedy
choices. llama.cpp batches consecutive sequence ids together in one pass (split_equal), so a
sequence takes the lowest free id and each batch lists its sequences in id order.

A request alone gives the same tokens as LlamaCppEngine. Sharing a batch can still change a
sequence's logits in their last bits (how llama.cpp cuts the batch into sub-batches varies with
the company), so a greedy reply under load may part from the solo one at a near tie.

Each sequence has its own samplers (llama_sampling: penalties and its draw, and beside them the
JSON grammar of its response format), so grammar state and penalty counts never mix between
sequences. With ``sampling.logprobs`` each token's log probability is read from the logits of
its batch row right after it is drawn, and travels on the chunk that carries its text.

Prompts that share a prefix share its evaluation (GENERATION_PREFIX_CACHE, on by default), as
llama-server's cache_prompt and vLLM's prefix caching do: coaching features open with the same
system prompt, and requests that arrive together often carry the same whole prompt. A slot keeps
the KV cells of its last sequence, and a new sequence takes the free slot whose cells share the
longest prefix with its prompt and evaluates only the rest. A prefix held by another slot, or by
a running sequence, is copied into the new sequence's stream (``llama_state_seq_get_data`` /
``_set_data``: only that sequence's cells, where ``llama_memory_seq_cp`` across streams copies a
whole stream); when the running sequence has not evaluated the shared part yet, the newcomer waits
for it (its chunks end where the shared part ends) instead of evaluating the same tokens beside
it. At least the prompt's last token is always evaluated, for the logits of the first draw. A
token's keys and values depend only on the tokens before it, and where llama.cpp's CPU kernels
compute each token's row alone (AVX2) a reused prefix gives the reply a fresh evaluation gives
(tests say so); on AVX-512 they do not (a prompt's last logits move by up to about 0.66 with the
batch shape), so there, as for a prefix evaluated beside other sequences, a reply may part from
the fresh one at a near tie.

All of llama.cpp runs on the scheduler thread, from loading and warm-up on: its OpenMP build gives
every calling thread its own team of workers (see llama_cpp_engine). Sequences are isolated: a
decode that fails is retried one sequence at a time so only the culprit fails, and an error
while sampling or decoding the text of one sequence ends that sequence alone.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import contextvars
import ctypes
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.common.errors import NotFound, Unavailable
from upcoach_llm.common.logging import get_logger
from upcoach_llm.engines.base import ChatEngine, Finished, TextChunk, TokenLogprob
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
from upcoach_llm.engines.llama_sampling import (
    SequenceSampler,
    grammar_for,
    log_softmax_at,
    top_tokens,
)
from upcoach_llm.engines.stop_sequences import StopScanner

log = get_logger(__name__)

PREFILL_CHUNK = 64
PREFILL_TOKENS_PER_STEP = 64
PREFILL_JOIN_TOKENS = 4
# Copying a prefix costs about its cells in memcpy; evaluating a token costs milliseconds.
MIN_COPIED_PREFIX = 4


@dataclass(eq=False)
class _Sequence:
    """One request, shared by the event loop (which reads) and the scheduler thread."""

    prompt: list[int]
    sampling: Sampling
    started: float
    post: Callable[[object], object]
    done: Callable[[], object]
    cancel: threading.Event = field(default_factory=threading.Event)
    seq_id: int = -1
    fed: int = 0
    cached: list[int] = field(default_factory=list)
    source: _Sequence | None = None
    shared: int = 0
    cuts: set[int] = field(default_factory=set)
    last: int = -1
    generated: int = 0
    abandoned: bool = False
    first_text_at: float | None = None
    sampler: SequenceSampler | None = None
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))
    stops: StopScanner | None = None
    grammar: str | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)

    def emit(self, item: object) -> None:
        """Hands an item to the event loop; a closed loop counts as a cancellation."""
        try:
            self.post(item)
        except RuntimeError:
            self.cancel.set()

    @property
    def prefilling(self) -> bool:
        return self.fed < len(self.prompt)

    def next_tokens(self) -> list[int]:
        """This step's input: the next prompt chunk (ending where a follower's shared prefix
        ends), or the last sampled token."""
        if self.prefilling:
            end = min([self.fed + PREFILL_CHUNK, *(c for c in self.cuts if c > self.fed)])
            return self.prompt[self.fed:end]
        return [self.last]

    def planned(self) -> list[int]:
        """The tokens its KV cells hold, or will once its prompt is evaluated."""
        return self.prompt if self.prefilling else self.cached


class _Scheduler:
    """The thread that owns the llama context and runs every decode step."""

    def __init__(self, settings: LlamaSettings) -> None:
        self.settings = settings
        self.llama: llama_cpp.Llama | None = None
        self.batch: llama_cpp.llama_batch | None = None
        self._inbox: deque[_Sequence] = deque()
        self._active: list[_Sequence] = []
        self._free_ids = set(range(settings.parallel))
        self._kept: dict[int, list[int]] = {}  # free slot -> the tokens its cells still hold
        self.prefix_cache = settings.prefix_cache  # and the model's cache allows it (_load)
        self.reused_tokens = 0  # prompt tokens taken from the prefix cache, not evaluated
        self.n_ctx_seq = settings.n_ctx
        self._wake = threading.Condition()
        self._closing = False
        self._loaded: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._main, name="llama-batched", daemon=True)

    async def start(self) -> llama_cpp.Llama:
        """Starts the thread, which loads and warms the model; raises what loading raised."""
        loop = asyncio.get_running_loop()
        self._loaded = loop.create_future()
        self._thread.start()
        await self._loaded
        assert self.llama is not None
        return self.llama

    def submit(self, seq: _Sequence) -> None:
        with self._wake:
            if self._closing:
                raise Unavailable("the llama.cpp engine is closing")
            self._inbox.append(seq)
            self._wake.notify()

    def poke(self) -> None:
        """Wakes the thread (a sequence was cancelled while it idled)."""
        with self._wake:
            self._wake.notify()

    async def stop(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)

    def _main(self) -> None:
        try:
            self._load()
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            self._free_context()
            self._resolve_loaded(exc)
            return
        self._resolve_loaded(None)
        try:
            self._serve()
        finally:
            self._end_all(Unavailable("the llama.cpp engine is closing"))
            self._free_context()

    def _resolve_loaded(self, error: BaseException | None) -> None:
        future = self._loaded
        assert future is not None

        def resolve() -> None:
            if future.done():
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        future.get_loop().call_soon_threadsafe(resolve)

    def _load(self) -> None:
        settings = self.settings
        self.llama = open_llama(settings, n_seq_max=settings.parallel,
                                n_threads=settings.batched_threads or settings.n_threads)
        self.ctx = self.llama.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llama.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_seq = llama_cpp.llama_n_ctx_seq(self.ctx)
        self.prefix_cache = settings.prefix_cache and _cells_reusable(self.llama.model)
        self.batch = llama_cpp.llama_batch_init(
            PREFILL_TOKENS_PER_STEP + PREFILL_CHUNK + settings.parallel, 0, 1)
        self._warm_up()

    def _warm_up(self) -> None:
        assert self.llama is not None
        tokens = tokenize(chat_formatter(self.llama, self.settings), self.llama,
                          [Message(role="user", content="Hi")])
        seq = _Sequence(tokens[:PREFILL_CHUNK], Sampling(max_tokens=1, top_p=1.0,
                                                         temperature=0.0),
                        0.0, lambda _: None, lambda: None)
        self._begin(seq)
        try:
            if self._decode([(seq, seq.next_tokens())]) != 0:
                raise RuntimeError("llama_decode failed while warming up")
        finally:
            self._release_sequence(seq, keep=False)

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._closing and not self._inbox and not self._active:
                    self._wake.wait()
                if self._closing:
                    return
                incoming = list(self._inbox)
                self._inbox.clear()
            for seq in incoming:
                self._admit(seq)
            self._drop_cancelled()
            if self._active:
                self._step()

    def _admit(self, seq: _Sequence) -> None:
        try:
            self._begin(seq)
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller's stream
            self._end(seq, exc)
            return
        self._active.append(seq)

    def _begin(self, seq: _Sequence) -> None:
        """Gives the sequence a slot (the one holding the longest prefix of its prompt, else
        the lowest empty one), keeps what the slot holds of its prompt, and looks for a longer
        prefix elsewhere."""
        kept = self._kept if self.prefix_cache else {}
        seq.seq_id = max(sorted(self._free_ids), key=lambda i: (
            _common(kept.get(i, ()), seq.prompt, len(seq.prompt) - 1), i not in kept))
        self._free_ids.discard(seq.seq_id)
        reuse = _common(self._kept.pop(seq.seq_id, ()), seq.prompt, len(seq.prompt) - 1)
        reuse = reuse if self.prefix_cache else 0
        llama_cpp.llama_memory_seq_rm(self.memory, seq.seq_id, reuse, -1)
        seq.fed, seq.cached = reuse, seq.prompt[:reuse]
        self.reused_tokens += reuse
        seq.stops = StopScanner(seq.sampling.stop)
        seq.sampler = SequenceSampler(seq.sampling, self.vocab, seq.grammar)
        if self.prefix_cache:
            self._share(seq)

    def _share(self, seq: _Sequence) -> None:
        """Copies the longest prefix of its prompt that another slot holds, or waits for the
        running sequence that will hold it; nothing when that would save too few tokens."""
        limit = len(seq.prompt) - 1
        best, source, slot = seq.fed + MIN_COPIED_PREFIX - 1, None, -1
        for other in self._active:
            if other is not seq and other.source is None:
                length = _common(other.planned(), seq.prompt, limit)
                if length > best:
                    best, source, slot = length, other, other.seq_id
        for kept_slot, tokens in self._kept.items():
            length = _common(tokens, seq.prompt, limit)
            if length > best:
                best, source, slot = length, None, kept_slot
        if slot < 0:
            return
        if source is not None and len(source.cached) < best:
            seq.source, seq.shared = source, best
            source.cuts.add(best)
            return
        self._copy_prefix(seq, slot, best)

    def _copy_prefix(self, seq: _Sequence, slot: int, length: int) -> None:
        """Puts the first ``length`` cells of ``slot`` into the sequence's own stream."""
        ctx = self.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, slot)
        buffer = (ctypes.c_uint8 * size)()
        copied = (llama_cpp.llama_state_seq_get_data(ctx, buffer, size, slot) == size
                  and llama_cpp.llama_state_seq_set_data(ctx, buffer, size, seq.seq_id) > 0)
        if not copied:  # the stream was emptied: evaluate the whole prompt instead
            llama_cpp.llama_memory_seq_rm(self.memory, seq.seq_id, -1, -1)
            length = 0
        llama_cpp.llama_memory_seq_rm(self.memory, seq.seq_id, length, -1)
        self.reused_tokens += length - seq.fed
        seq.fed, seq.cached = length, seq.prompt[:length]

    def _follow(self, seq: _Sequence) -> bool:
        """Whether a sequence waiting for another's prefix may go on: it takes the prefix once
        evaluated, and looks again if its source ended first."""
        source = seq.source
        assert source is not None
        if source in self._active and len(source.cached) < seq.shared:
            return False
        seq.source = None
        source.cuts.discard(seq.shared)
        if source in self._active:
            self._copy_prefix(seq, source.seq_id, seq.shared)
        else:
            self._share(seq)
        return seq.source is None

    def _follow_or_end(self, seq: _Sequence) -> bool:
        """``_follow``; an error taking the prefix ends that sequence alone."""
        try:
            return self._follow(seq)
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller's stream
            self._end(seq, exc)
            return False

    def _drop_cancelled(self) -> None:
        for seq in [s for s in self._active if s.cancel.is_set()]:
            seq.abandoned = True
            self._end(seq, None)

    def _step(self) -> None:
        """One decode of every active sequence's next input, then sampling where it is due."""
        plan: list[tuple[_Sequence, list[int]]] = []
        prefilling: list[_Sequence] = []
        for seq in list(self._active):
            if seq.source is not None and not self._follow_or_end(seq):
                continue
            if seq.prefilling:
                prefilling.append(seq)
            else:
                plan.append((seq, seq.next_tokens()))
        budget = PREFILL_TOKENS_PER_STEP
        for seq in sorted(prefilling, key=lambda s: len(s.prompt) - s.fed):
            tokens = seq.next_tokens()
            joins = len(seq.prompt) - seq.fed <= PREFILL_JOIN_TOKENS
            if len(tokens) > budget or (budget < PREFILL_TOKENS_PER_STEP and not joins):
                break
            budget -= len(tokens)
            plan.append((seq, tokens))
        if not plan:
            return
        plan.sort(key=lambda entry: entry[0].seq_id)
        code = self._decode(plan)
        if code == 0:
            return
        if len(plan) > 1:  # find the culprit: only a sequence that fails alone ends
            for entry in plan:
                if entry[0] in self._active:
                    code = self._decode([entry])
                    if code != 0:
                        self._end(entry[0], _decode_error(code))
            return
        self._end(plan[0][0], _decode_error(code))

    def _decode(self, plan: list[tuple[_Sequence, list[int]]]) -> int:
        """Decodes the plan in one batch and advances each sequence; llama_decode's code."""
        batch = self.batch
        n = 0
        outputs: list[tuple[_Sequence, int]] = []
        for seq, tokens in plan:
            pos = seq.fed if seq.prefilling else len(seq.prompt) + seq.generated - 1
            for offset, token in enumerate(tokens):
                batch.token[n] = token
                batch.pos[n] = pos + offset
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq.seq_id
                batch.logits[n] = False
                n += 1
            if seq.fed + len(tokens) >= len(seq.prompt):
                batch.logits[n - 1] = True
                outputs.append((seq, n - 1))
        batch.n_tokens = n
        code = llama_cpp.llama_decode(self.ctx, batch)
        if code != 0:
            return code
        for seq, tokens in plan:
            seq.fed = min(len(seq.prompt), seq.fed + len(tokens))
            seq.cached.extend(tokens)
        for seq, index in outputs:
            self._advance(seq, index)
        return 0

    def _advance(self, seq: _Sequence, index: int) -> None:
        if seq.cancel.is_set():
            seq.abandoned = True
            self._end(seq, None)
            return
        try:
            result = self._sample(seq, index)
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller's stream
            self._end(seq, exc)
            return
        if result is not None:
            self._end(seq, result)

    def _sample(self, seq: _Sequence, index: int) -> Finished | None:
        """Samples one token; returns the Finished that ends the sequence, if it does."""
        assert seq.sampler is not None
        token = seq.sampler.sample(self.ctx, index)
        if llama_cpp.llama_vocab_is_eog(self.vocab, token):
            return self._finished(seq, "stop", stopped=False)
        seq.generated += 1
        seq.last = token
        assert self.llama is not None and seq.stops is not None
        decoded = seq.decoder.decode(self.llama.detokenize([token]))
        if seq.sampling.logprobs:
            seq.logprobs.append(self._logprob(seq, index, token, decoded))
        text, stopped = seq.stops.push(decoded)
        self._emit_text(seq, text)
        if stopped:
            return self._finished(seq, "stop", stopped=True)
        if seq.generated >= seq.sampling.max_tokens:
            return self._finished(seq, "length", stopped=False)
        return None

    def _logprob(self, seq: _Sequence, index: int, token: int, text: str) -> TokenLogprob:
        """The token's log probability (its text as it joins the reply) and the likeliest
        alternatives (each token's own text, special tokens spelled out)."""
        assert self.llama is not None
        logprobs = log_softmax_at(self.ctx, index, self.n_vocab)
        top = tuple((self.llama.detokenize([alt], special=True).decode("utf-8", "replace"), lp)
                    for alt, lp in top_tokens(logprobs, seq.sampling.top_logprobs))
        return TokenLogprob(text, float(logprobs[token]), top)

    @staticmethod
    def _emit_text(seq: _Sequence, text: str) -> None:
        """Emits text with the log probabilities of the tokens not yet sent; those of tokens
        whose text a stop sequence swallowed are never sent."""
        if text:
            if seq.first_text_at is None:
                seq.first_text_at = time.perf_counter()
            seq.emit(TextChunk(text, tuple(seq.logprobs)))
            seq.logprobs.clear()

    def _finished(self, seq: _Sequence, reason: str, *, stopped: bool) -> Finished:
        if not stopped:
            assert seq.stops is not None
            tail, stopped = seq.stops.push(seq.decoder.decode(b"", final=True))
            self._emit_text(seq, tail + ("" if stopped else seq.stops.flush()))
        ended = time.perf_counter()
        return Finished(reason=reason, prompt_tokens=len(seq.prompt),  # type: ignore[arg-type]
                        completion_tokens=seq.generated,
                        time_to_first_token_ms=((seq.first_text_at or ended) - seq.started) * 1000,
                        generation_ms=(ended - seq.started) * 1000)

    def _end(self, seq: _Sequence, result: object) -> None:
        """Ends a sequence: hands its result (unless None) over, frees its cells and its slot."""
        if seq in self._active:
            self._active.remove(seq)
        if result is not None:
            seq.emit(result)
        if seq.source is not None:
            seq.source.cuts.discard(seq.shared)
        self._release_sequence(seq, keep=not isinstance(result, BaseException))
        with contextlib.suppress(RuntimeError):  # the event loop is gone
            seq.done()

    def _release_sequence(self, seq: _Sequence, *, keep: bool) -> None:
        """Frees its slot; the slot keeps its cells for the next sequence unless ``keep`` is
        false (a failed decode may have left cells that match no token list)."""
        if seq.seq_id < 0:
            return
        if keep and self.prefix_cache:
            self._kept[seq.seq_id] = seq.cached
        else:
            llama_cpp.llama_memory_seq_rm(self.memory, seq.seq_id, -1, -1)
        self._free_ids.add(seq.seq_id)
        seq.seq_id = -1
        if seq.sampler is not None:
            seq.sampler.free()
            seq.sampler = None

    def _end_all(self, error: Exception) -> None:
        with self._wake:
            waiting = list(self._inbox)
            self._inbox.clear()
        for seq in [*self._active, *waiting]:
            if self.llama is not None:
                self._end(seq, error)

    def _free_context(self) -> None:
        if self.batch is not None:
            llama_cpp.llama_batch_free(self.batch)
            self.batch = None
        if self.llama is not None:
            self.llama.close()


def _common(tokens: Sequence[int], prompt: list[int], limit: int) -> int:
    """The length of the common prefix, at most ``limit``."""
    length = min(len(tokens), limit)
    for index in range(length):
        if tokens[index] != prompt[index]:
            return index
    return length


def _cells_reusable(model: llama_cpp.llama_model_p) -> bool:
    """Whether a sequence's KV cells can be kept, cut and copied as the prefix cache does: not
    for a recurrent or hybrid model (its state cannot be cut at a position) nor a sliding-window
    one (cells before the window may be gone); the cache is then off, and logged."""
    reusable = not (llama_cpp.llama_model_is_recurrent(model)
                    or llama_cpp.llama_model_is_hybrid(model)
                    or llama_cpp.llama_model_n_swa(model) > 0)
    if not reusable:
        log.warning("GENERATION_PREFIX_CACHE is on but this model's memory cannot be cut at a "
                    "position (recurrent, hybrid or sliding-window attention): prefixes are "
                    "evaluated afresh")
    return reusable


def _decode_error(code: int) -> RuntimeError:
    return RuntimeError(f"llama_decode failed on this request (code {code})")


class BatchedLlamaEngine(PooledLlamaStatus, ChatEngine):
    """Serves ``settings.model_name`` from ``settings.model_path``, batching concurrent requests."""

    def __init__(self, settings: LlamaSettings) -> None:
        self.settings = settings
        self.pool: ContextPool[int] | None = None
        self._scheduler: _Scheduler | None = None
        self._formatter: Jinja2ChatFormatter | None = None
        self._tokenizer: llama_cpp.Llama | None = None
        self._jobs: set[_Sequence] = set()

    async def load(self) -> None:
        started = time.perf_counter()
        scheduler = _Scheduler(self.settings)
        llama = await scheduler.start()
        self._formatter = chat_formatter(llama, self.settings)
        self._tokenizer = llama
        self._scheduler = scheduler
        self.pool = ContextPool(list(range(self.settings.parallel)), self.settings.max_queue,
                                what="llama sequence slot", limit_name="GENERATION_MAX_QUEUE",
                                wait_limit_name="GENERATION_QUEUE_TIMEOUT_S",
                                max_wait_s=self.settings.queue_timeout_s)
        log.info("model loaded", extra={"fields": {
            "model": self.settings.model_name, "path": str(self.settings.model_path),
            "sequences": self.settings.parallel, "n_ctx_per_sequence": self.settings.n_ctx,
            "n_threads": self.settings.batched_threads or self.settings.n_threads,
            "batched": True, "seconds": round(time.perf_counter() - started, 3)}})

    async def stream(self, model: str, messages: list[Message],
                     sampling: Sampling) -> AsyncIterator[TextChunk | Finished]:
        if model != self.settings.model_name:
            raise NotFound(f"{model!r} is not served by the embedded llama.cpp engine, "
                           f"which serves {self.settings.model_name!r}", field="model")
        pool, scheduler = self.pool, self._scheduler
        if pool is None or scheduler is None:
            raise Unavailable("the llama.cpp engine is not loaded")
        started = time.perf_counter()
        assert self._formatter is not None and self._tokenizer is not None
        prompt = await prompt_tokens(self._formatter, self._tokenizer, messages)
        sampling = self._fitted(len(prompt), sampling)
        grammar = await grammar_for(sampling.response_format)

        slot = await pool.acquire()
        loop = asyncio.get_running_loop()
        mailbox = _Mailbox()
        seq = _Sequence(prompt, sampling, started,
                        partial(loop.call_soon_threadsafe, mailbox.put), lambda: None,
                        grammar=grammar)
        seq.done = partial(loop.call_soon_threadsafe, self._sequence_done, pool, slot, seq,
                           context=contextvars.copy_context())
        try:
            scheduler.submit(seq)
        except Unavailable:
            pool.release(slot)
            raise
        self._jobs.add(seq)
        try:
            async for item in mailbox.items():
                yield item
        finally:
            if not mailbox.ended:
                seq.cancel.set()
                scheduler.poke()

    def _sequence_done(self, pool: ContextPool[int], slot: int, seq: _Sequence) -> None:
        self._jobs.discard(seq)
        pool.release(slot)
        if seq.abandoned:
            log.info("generation cancelled", extra={"fields": {
                "completion_tokens": seq.generated,
                "ms": round((time.perf_counter() - seq.started) * 1000, 1)}})

    def _fitted(self, prompt_tokens: int, sampling: Sampling) -> Sampling:
        """Each sequence may use ``n_ctx`` cells (LLAMA_N_CTX), whatever the others use."""
        assert self._scheduler is not None
        return fitted(prompt_tokens, sampling, min(self.settings.n_ctx,
                                                   self._scheduler.n_ctx_seq))

    async def close(self) -> None:
        for seq in list(self._jobs):
            seq.cancel.set()
        scheduler, self._scheduler, self.pool = self._scheduler, None, None
        if scheduler is not None:
            await scheduler.stop()


class _Mailbox:
    """What the scheduler thread posts for one stream, read on the event loop."""

    def __init__(self) -> None:
        self._pending: deque[object] = deque()
        self._wake = asyncio.Event()
        self.ended = False

    def put(self, item: object) -> None:
        self._pending.append(item)
        self._wake.set()

    async def items(self) -> AsyncIterator[TextChunk | Finished]:
        """Text (chunks queued together are joined), then Finished; an error is raised."""
        pending = self._pending
        while True:
            if not pending:
                self._wake.clear()
                await self._wake.wait()
            item = pending.popleft()
            if isinstance(item, TextChunk):
                run = [item]
                while pending and isinstance(pending[0], TextChunk):
                    run.append(pending.popleft())  # type: ignore[arg-type]
                yield TextChunk.joined(run)
                continue
            self.ended = True
            if isinstance(item, Finished):
                yield item
                return
            raise item  # type: ignore[misc]
