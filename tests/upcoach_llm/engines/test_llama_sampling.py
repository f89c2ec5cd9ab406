"""OpenAI's sampling fields on the embedded engines with the real SmolLM2-135M model: JSON replies
held to a grammar (json_object, json_schema), per-token log probabilities, and the penalties;
what an engine cannot do it refuses, naming the field."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import AsyncIterator

import jsonschema
import llama_cpp
import numpy as np
import pytest
import pytest_asyncio

from tests.upcoach_llm.engines.llama_support import MODEL, N_CTX
from upcoach_llm.common.chat import Message, ResponseFormat, Sampling
from upcoach_llm.common.errors import InvalidArgument
from upcoach_llm.engines.base import Finished, TextChunk, TokenLogprob
from upcoach_llm.engines.llama_batched import BatchedLlamaEngine
from upcoach_llm.engines.llama_cpp_engine import LlamaCppEngine
from upcoach_llm.engines.llama_cpp_settings import LlamaSettings, packaged_model_path
from upcoach_llm.engines.llama_sampling import grammar_of, seed32, top_tokens

pytestmark = pytest.mark.asyncio(loop_scope="module")

MOOD = [Message("user", 'Return {"mood": "happy"} as JSON.')]
TIP = [Message("user", "Give me one tip to drink more water. Answer in JSON.")]
SCHEMA = {"type": "object", "properties": {"tip": {"type": "string", "maxLength": 60}},
          "required": ["tip"]}


def greedy(max_tokens: int, **fields: object) -> Sampling:
    return Sampling(max_tokens=max_tokens, temperature=0.0, top_p=1.0, **fields)  # type: ignore[arg-type]


def settings(parallel: int) -> LlamaSettings:
    return LlamaSettings(model_path=packaged_model_path(), n_ctx=N_CTX, n_threads=2,
                         parallel=parallel, queue_timeout_s=300.0)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine() -> AsyncIterator[BatchedLlamaEngine]:
    engine = BatchedLlamaEngine(settings(parallel=2))
    await engine.load()
    yield engine
    await engine.close()


async def reply(engine: BatchedLlamaEngine | LlamaCppEngine, messages: list[Message],
                sampling: Sampling) -> tuple[str, list[TokenLogprob], Finished]:
    chunks: list[TextChunk] = []
    finished: list[Finished] = []
    async for item in engine.stream(MODEL, messages, sampling):
        (chunks if isinstance(item, TextChunk) else finished).append(item)  # type: ignore[arg-type]
    assert len(finished) == 1
    whole = TextChunk.joined(chunks) if chunks else TextChunk("")
    return whole.text, list(whole.logprobs), finished[0]


async def test_json_object_replies_parse(engine: BatchedLlamaEngine) -> None:
    free, _, _ = await reply(engine, MOOD, greedy(24))
    text, _, finished = await reply(engine, MOOD, greedy(48, response_format=ResponseFormat(
        "json_object")))
    assert finished.reason == "stop", text
    assert isinstance(json.loads(text), dict)
    assert not free.lstrip().startswith("{")  # unconstrained, the model talks first


async def test_json_schema_replies_validate_while_a_free_one_runs_beside(
        engine: BatchedLlamaEngine) -> None:
    """Each sequence has its own grammar: the free-text reply next to a JSON one is the one it
    gives alone."""
    alone, _, _ = await reply(engine, TIP, greedy(20))
    constrained = greedy(64, response_format=ResponseFormat("json_schema", json.dumps(SCHEMA),
                                                            "tip"))
    (text, _, finished), (beside, _, _) = await asyncio.gather(
        reply(engine, TIP, constrained), reply(engine, TIP, greedy(20)))
    assert finished.reason == "stop", text
    jsonschema.validate(json.loads(text), SCHEMA)
    assert beside[:16] == alone[:16]  # a shared batch may part at a near tie, never this early


async def test_logprobs_are_the_models_per_token(engine: BatchedLlamaEngine) -> None:
    text, logprobs, finished = await reply(engine, TIP, greedy(12, logprobs=True,
                                                               top_logprobs=3))
    assert len(logprobs) == finished.completion_tokens == 12
    assert "".join(lp.token for lp in logprobs) == text
    for lp in logprobs:
        assert -50 < lp.logprob <= 0
        assert len(lp.top) == 3
        values = [value for _, value in lp.top]
        assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)
        # greedy, nothing else in the chain: the chosen token is the likeliest
        assert lp.top[0] == (lp.token, lp.logprob) or math.isclose(lp.top[0][1], lp.logprob)
    plain, none, _ = await reply(engine, TIP, greedy(12))
    assert plain == text and none == []


async def test_logprobs_without_alternatives_and_under_a_grammar(
        engine: BatchedLlamaEngine) -> None:
    text, logprobs, finished = await reply(engine, MOOD, greedy(
        48, logprobs=True, response_format=ResponseFormat("json_object")))
    assert finished.reason == "stop" and isinstance(json.loads(text), dict)
    assert "".join(lp.token for lp in logprobs) == text
    assert all(lp.top == () and lp.logprob <= 0 for lp in logprobs)


async def test_penalties_change_a_greedy_reply(engine: BatchedLlamaEngine) -> None:
    plain, _, _ = await reply(engine, TIP, greedy(24))
    penalised, _, finished = await reply(engine, TIP, greedy(24, frequency_penalty=2.0))
    assert finished.completion_tokens > 0 and penalised != plain
    present, _, _ = await reply(engine, TIP, greedy(24, presence_penalty=-0.5,
                                                    repeat_penalty=1.1))
    assert present.strip()


async def test_an_unusable_schema_is_invalid_argument_naming_it(
        engine: BatchedLlamaEngine) -> None:
    bad = greedy(8, response_format=ResponseFormat("json_schema", '{"type": "shape"}'))
    with pytest.raises(InvalidArgument, match="sampling.response_format.schema_json"):
        await reply(engine, TIP, bad)
    for _ in range(500):  # a slot comes back on the event loop just after its Finished
        if engine.pool is not None and engine.pool.free == 2:
            break
        await asyncio.sleep(0.01)
    assert engine.pool is not None and engine.pool.free == 2  # the refusal held no slot


async def test_the_unbatched_engine_holds_json_but_refuses_logprobs() -> None:
    engine = LlamaCppEngine(settings(parallel=1))
    with pytest.raises(InvalidArgument, match="sampling.logprobs"):
        await reply(engine, TIP, greedy(4, logprobs=True))  # refused before it is even loaded
    await engine.load()
    try:
        text, _, finished = await reply(engine, MOOD, greedy(48, response_format=ResponseFormat(
            "json_object")))
    finally:
        await engine.close()
    assert finished.reason == "stop" and isinstance(json.loads(text), dict)


async def test_a_grammar_llama_cpp_cannot_parse_is_refused_by_the_unbatched_engine(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """llama-cpp-python would add the NULL sampler to its chain and crash the process."""
    from upcoach_llm.engines import llama_cpp_engine

    async def unparsable(form: ResponseFormat) -> str | None:
        return 'root ::= ( "a" ' if form.type == "json_object" else None

    monkeypatch.setattr(llama_cpp_engine, "grammar_for", unparsable)
    engine = LlamaCppEngine(settings(parallel=1))
    await engine.load()
    try:
        with pytest.raises(InvalidArgument, match="sampling.response_format.schema_json"):
            await reply(engine, TIP, greedy(4, response_format=ResponseFormat("json_object")))
        text, _, finished = await reply(engine, TIP, greedy(4))  # and it serves on
    finally:
        await engine.close()
    assert text and finished.reason == "length"


async def test_grammars_and_top_tokens() -> None:
    assert grammar_of(ResponseFormat()) is None
    json_object = grammar_of(ResponseFormat("json_object")) or ""
    assert "root   ::= object" in json_object
    assert json_object.rstrip().endswith('ws ::= | " " | "\\n"')  # no runs of indentation
    assert "tip-kv" in (grammar_of(ResponseFormat("json_schema", json.dumps(SCHEMA))) or "")
    values = np.log(np.array([0.1, 0.5, 0.1, 0.3]))
    assert [token for token, _ in top_tokens(values, 3)] == [1, 3, 0]
    assert top_tokens(values, 0) == []


async def test_joined_chunks_keep_their_logprobs_in_order() -> None:
    first = TextChunk("Hi", (TokenLogprob("Hi", -0.1),))
    second = TextChunk(" there", (TokenLogprob(" there", -0.2, ((" there", -0.2),)),))
    joined = TextChunk.joined([first, second])
    assert joined.text == "Hi there"
    assert [lp.token for lp in joined.logprobs] == ["Hi", " there"]
    proto = joined.logprobs[1].to_proto()
    assert (proto.token, proto.logprob, proto.top_logprobs[0].token) == (" there", -0.2, " there")


async def test_a_seed_is_never_the_value_llama_cpp_reads_as_random() -> None:
    assert [seed32(s) for s in (5, 0, -1, 0xFFFFFFFF, 2**33 - 1, 2**32 + 7)] == [5, 0, 0, 0, 0, 7]
    assert seed32(None) != llama_cpp.LLAMA_DEFAULT_SEED


async def test_the_engine_refuses_a_grammar_nested_past_llama_cpps_parser() -> None:
    deep = ResponseFormat("json_schema", '{"type": "string", "maxLength": 1500}')
    with pytest.raises(InvalidArgument, match="nests too deeply"):
        grammar_of(deep)
    assert grammar_of(ResponseFormat("json_schema", '{"type": "string", "maxLength": 500}'))


async def test_a_schema_the_converter_cannot_use_is_named_without_quoting_it_whole() -> None:
    secret = "x" * 500
    schema = json.dumps({"$ref": "#/$defs/missing", "$defs": {"other": {"description": secret}}})
    with pytest.raises(InvalidArgument) as caught:
        grammar_of(ResponseFormat("json_schema", schema))
    assert caught.value.field == "sampling.response_format.schema_json"
    assert secret not in caught.value.message and len(caught.value.message) < 300
    assert "missing" not in caught.value.message, "no piece of the schema either"
    with pytest.raises(InvalidArgument) as unknown:
        grammar_of(ResponseFormat("json_schema", '{"type": "MARKtype"}'))
    assert unknown.value.message == ("sampling.response_format.schema_json: cannot be turned into "
                                     "a grammar (AssertionError: Unrecognized schema)")


async def test_a_long_schema_is_converted_off_the_event_loop(monkeypatch) -> None:
    """Converting a hostile schema of a few thousand characters takes a third of a second: not
    on the loop that relays every other stream. A short one stays inline (no thread hop)."""
    from upcoach_llm.engines import llama_sampling

    threads: list[str] = []
    real = llama_sampling.json_schema_to_gbnf

    def converting(schema: str) -> str:
        threads.append(threading.current_thread().name)
        return real(schema)

    monkeypatch.setattr(llama_sampling, "json_schema_to_gbnf", converting)
    short = {"type": "object", "properties": {"mood": {"type": "string"}}}
    long = {"type": "object", "properties": {f"field_{i}": {"type": "string",
                                                            "description": "x" * 40}
                                             for i in range(40)}}
    formats = [ResponseFormat("json_schema", json.dumps(schema)) for schema in (short, long)]
    grammars = [await llama_sampling.grammar_for(f) for f in formats]
    main = threading.main_thread().name
    assert threads[:2] == [main, threads[1]] and threads[1] != main
    assert grammars == [grammar_of(f) for f in formats]
    assert len(json.dumps(long)) > llama_sampling.INLINE_SCHEMA_CHARS
