"""llama.cpp's samplers for a request's Sampling: the chain, the JSON grammar, log probabilities.

The chain is penalties (llama.cpp's repeat penalty from GENERATION_REPEAT_PENALTY, OpenAI's
frequency and presence penalties, over the reply's own tokens), then greedy at temperature 0,
else top_p, temperature and a draw seeded by the request. Each sequence has its own samplers,
which see each token it accepts, so grammar state and token counts are never shared.

The grammar runs beside the chain, as llama.cpp's common sampler runs it: the chain draws from
the whole vocabulary, the grammar checks only the token drawn, and only when it rejects it are
the logits drawn from again with the grammar applied to all of them first. The reply is the same;
the cost is not: measured on SmolLM2 (49152 tokens) here, 1.5 ms of CPU a token against 12 ms
for the grammar on every token, on the scheduler thread that every sequence shares.

JSON: ``json_object`` uses llama.cpp's JSON grammar (any JSON object), ``json_schema`` the GBNF
that llama.cpp's json-schema-to-grammar converter (shipped as ``llama_cpp.llama_grammar``) makes
of the schema. The grammar lets the model end only once the JSON is complete, so a reply that
finishes with "stop" parses; one cut by max_tokens does not.

Log probabilities are those of the model: the log-softmax of the raw logits the token was drawn
from, before penalties, grammar, top_p and temperature (as OpenAI reports them).
"""

from __future__ import annotations

import asyncio
import ctypes
import random
import re

import llama_cpp
import numpy as np
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from upcoach_llm.common.chat import ResponseFormat, Sampling
from upcoach_llm.common.errors import InvalidArgument

_SCHEMA_FIELD = "sampling.response_format.schema_json"
INLINE_SCHEMA_CHARS = 1_000
# llama.cpp's JSON grammar lets whitespace run to 20 characters after each newline; a small
# model can then spend its whole budget on indentation. One space or newline is enough.
_JSON_OBJECT_GBNF = JSON_GBNF.replace('ws ::= | " " | "\\n" [ \\t]{0,20}', 'ws ::= | " " | "\\n"')


_PROBLEM_WORDS = re.compile(r"[A-Za-z][A-Za-z ]{0,60}")


def grammar_of(response_format: ResponseFormat) -> str | None:
    """The GBNF a reply must match, or None for free text; an unusable schema is
    InvalidArgument naming it."""
    if response_format.type == "json_object":
        return _JSON_OBJECT_GBNF
    if response_format.type != "json_schema":
        return None
    try:
        grammar = json_schema_to_gbnf(response_format.schema_json)
    except Exception as exc:  # noqa: BLE001 - the converter raises anything on schemas it lacks
        # Its message quotes the schema (the caller's payload): the words before the first
        # value ("Unrecognized schema", "Unsupported ref") name the problem.
        words = _PROBLEM_WORDS.match(str(exc))
        detail = f": {words.group().strip()}" if words else ""
        raise InvalidArgument(f"cannot be turned into a grammar ({type(exc).__name__}{detail})",
                              field=_SCHEMA_FIELD) from None
    if _nesting(grammar) > MAX_GRAMMAR_NESTING:
        raise InvalidArgument("its grammar nests too deeply for llama.cpp (fewer repetitions or "
                              "levels)", field=_SCHEMA_FIELD)
    return grammar


async def grammar_for(response_format: ResponseFormat) -> str | None:
    """``grammar_of``, on a worker thread for a schema longer than INLINE_SCHEMA_CHARS: a hostile
    one of a few thousand characters takes a third of a second to convert, which the engine's
    event loop would otherwise take from every other stream it relays."""
    if (response_format.type == "json_schema"
            and len(response_format.schema_json) > INLINE_SCHEMA_CHARS):
        return await asyncio.to_thread(grammar_of, response_format)
    return grammar_of(response_format)


def parsed_grammar(vocab: object, grammar: str) -> object:
    """llama.cpp's grammar sampler for the GBNF; InvalidArgument naming the schema where
    llama.cpp cannot parse it (it answers NULL, which a sampler chain would dereference)."""
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    if not sampler:
        raise InvalidArgument("llama.cpp could not parse its grammar", field=_SCHEMA_FIELD)
    return sampler


def seed32(seed: int | None) -> int:
    """A request's seed (a random one without) as llama.cpp takes it: 32 bits, and never
    LLAMA_DEFAULT_SEED (0xFFFFFFFF), which it reads as "pick one at random"."""
    value = (seed if seed is not None else random.getrandbits(32)) & 0xFFFFFFFF
    return 0 if value == llama_cpp.LLAMA_DEFAULT_SEED else value


# llama.cpp parses a grammar recursively, a level per parenthesis: about 3000 levels fail to
# parse and 20000 overflow the stack of the process. common/chat.py keeps schemas well under this
# (MAX_SCHEMA_REPEAT); this is the engine's own guard.
MAX_GRAMMAR_NESTING = 1000


def _nesting(grammar: str) -> int:
    """The deepest parenthesis nesting of a GBNF grammar, outside its literals and classes."""
    depth = deepest = 0
    quoted = in_class = escaped = False
    for char in grammar:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif in_class:
            in_class = char != "]"
        elif char == '"':
            quoted = True
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


class SequenceSampler:
    """One sequence's samplers: the chain and, for a JSON reply, its grammar. Not thread-safe:
    one thread samples, then calls ``free``."""

    def __init__(self, sampling: Sampling, vocab: object, grammar: str | None) -> None:
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        self.grammar = None
        if grammar is not None:
            self.grammar = parsed_grammar(vocab, grammar)
            self._ids = np.arange(self.n_vocab, dtype=np.int32)
            self._data = np.zeros(self.n_vocab, dtype=_TOKEN_DATA)
            self._one = np.zeros(1, dtype=_TOKEN_DATA)
        self.chain = _chain(sampling, self.n_vocab)
        self.argmax = grammar is None and _greedy_only(sampling)

    def sample(self, ctx: object, index: int) -> int:
        """Draws the token of batch output ``index`` and accepts it."""
        if self.argmax:  # what the greedy chain draws (the first of equal maxima), 6x cheaper
            return int(np.argmax(_logits(ctx, index, self.n_vocab)))
        if self.grammar is None:
            return llama_cpp.llama_sampler_sample(self.chain, ctx, index)
        logits = _logits(ctx, index, self.n_vocab)
        token = self._draw(logits, grammar_first=False)
        if not self._allowed(token, float(logits[token])):
            token = self._draw(logits, grammar_first=True)
        llama_cpp.llama_sampler_accept(self.grammar, token)
        llama_cpp.llama_sampler_accept(self.chain, token)
        return token

    def _draw(self, logits: np.ndarray, *, grammar_first: bool) -> int:
        data = self._data
        data["id"] = self._ids
        data["logit"] = logits
        data["p"] = 0.0
        candidates = _candidates(data)
        if grammar_first:
            llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(candidates))
        llama_cpp.llama_sampler_apply(self.chain, ctypes.byref(candidates))
        if not 0 <= candidates.selected < candidates.size:
            raise RuntimeError("the sampler chain selected no token")
        # A sampler may point ``data`` at its own sorted copy: read the choice through it.
        return int(candidates.data[candidates.selected].id)

    def _allowed(self, token: int, logit: float) -> bool:
        one = self._one
        one["id"], one["logit"], one["p"] = token, logit, 0.0
        candidate = _candidates(one)
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(candidate))
        return bool(np.isfinite(candidate.data[0].logit))

    def free(self) -> None:
        for sampler in (self.chain, self.grammar):
            if sampler:
                llama_cpp.llama_sampler_free(sampler)
        self.chain = self.grammar = None


def _candidates(data: np.ndarray) -> llama_cpp.llama_token_data_array:
    return llama_cpp.llama_token_data_array(
        data=data.ctypes.data_as(llama_cpp.llama_token_data_p), size=len(data), selected=-1,
        sorted=False)


def _penalised(sampling: Sampling) -> bool:
    return bool(sampling.repeat_penalty != 1.0 or sampling.frequency_penalty
                or sampling.presence_penalty)


def _greedy_only(sampling: Sampling) -> bool:
    """Whether the chain is greedy alone: no state, nothing to accept."""
    return sampling.temperature == 0 and not _penalised(sampling)


def _chain(sampling: Sampling, n_vocab: int) -> object:
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = llama_cpp.llama_sampler_chain_add
    if _penalised(sampling):
        add(chain, llama_cpp.llama_sampler_init_penalties(
            n_vocab, sampling.max_tokens, sampling.repeat_penalty, sampling.frequency_penalty,
            sampling.presence_penalty))
    if sampling.temperature == 0:
        add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
    add(chain, llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1))
    add(chain, llama_cpp.llama_sampler_init_temp(sampling.temperature))
    add(chain, llama_cpp.llama_sampler_init_dist(seed32(sampling.seed)))
    return chain


def _logits(ctx: object, index: int, n_vocab: int) -> np.ndarray:
    """The logits of batch output ``index``, a view valid until the next decode."""
    pointer = llama_cpp.llama_get_logits_ith(ctx, index)
    return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)),
                                 shape=(n_vocab,))


def log_softmax_at(ctx: object, index: int, n_vocab: int) -> np.ndarray:
    """The natural log probabilities of the logits of batch output ``index``."""
    logits = _logits(ctx, index, n_vocab).astype(np.float64)
    peak = logits.max()
    return logits - (peak + np.log(np.exp(logits - peak).sum()))


def top_tokens(logprobs: np.ndarray, count: int) -> list[tuple[int, float]]:
    """The ``count`` most likely tokens, most likely first (ties by token id)."""
    if count <= 0:
        return []
    ids = np.argpartition(-logprobs, count - 1)[:count]
    return sorted(((int(i), float(logprobs[i])) for i in ids), key=lambda t: (-t[1], t[0]))
