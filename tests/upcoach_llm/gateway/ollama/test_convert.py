"""Ollama requests to the pipeline's ChatTurn: the same router fields and cache form as OpenAI's
request for the same reply, and service errors renamed to the Ollama fields."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from upcoach_llm.api.names import RESPONSE_FORMAT_TYPE_VALUES
from upcoach_llm.gateway.chat import convert as openai_convert
from upcoach_llm.gateway.chat.protocol import ChatCompletionRequest
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.ollama import convert
from upcoach_llm.gateway.ollama.protocol import (
    OllamaChatRequest,
    OllamaGenerateRequest,
    OllamaOptions,
)

HI = [{"role": "user", "content": "hi"}]
SCHEMA = {"type": "object", "properties": {"tip": {"type": "string"}}, "required": ["tip"]}


def chat_turn(**fields):
    body = OllamaChatRequest.model_validate({"model": "mistral", "messages": HI, **fields})
    return convert.turn(body, convert.chat_messages(body))


def test_the_turn_matches_the_openai_turn_of_the_same_request() -> None:
    ollama = chat_turn(format="json", options={
        "num_predict": 8, "temperature": 0, "top_p": 0.5, "seed": 4, "stop": ["\n"],
        "frequency_penalty": 0.5, "presence_penalty": -1})
    openai = openai_convert.turn(ChatCompletionRequest.model_validate({
        "model": "mistral", "messages": HI, "max_tokens": 8, "temperature": 0, "top_p": 0.5,
        "seed": 4, "stop": ["\n"], "frequency_penalty": 0.5, "presence_penalty": -1,
        "response_format": {"type": "json_object"}}))
    assert ollama.canonical == openai.canonical
    assert ollama.sampling == openai.sampling
    assert ollama.messages == openai.messages
    assert (ollama.temperature, ollama.seed, ollama.max_tokens) == (0, 4, 8)


def test_a_schema_format_is_json_schema_with_the_schema() -> None:
    turn = chat_turn(format=SCHEMA)
    form = turn.sampling.response_format
    assert form.type == RESPONSE_FORMAT_TYPE_VALUES["json_schema"]
    assert json.loads(form.schema_json) == SCHEMA
    assert turn.canonical["sampling"]["response_format"][0] == "json_schema"
    assert not chat_turn(format="").sampling.HasField("response_format")


def test_unset_options_leave_the_service_defaults() -> None:
    for options in (None, {}, {"num_predict": -1},
                    {"num_predict": -2, "num_ctx": 4096, "mirostat": 0, "top_k": None}):
        turn = chat_turn(options=options)
        assert not turn.sampling.HasField("max_tokens")
        assert not turn.sampling.HasField("temperature")
        assert turn.canonical["sampling"] == {}


def test_generate_is_system_then_prompt() -> None:
    body = OllamaGenerateRequest.model_validate({"model": "m", "prompt": "p", "system": "s"})
    assert convert.generate_messages(body) == [("system", "s"), ("user", "p")]
    body = OllamaGenerateRequest.model_validate({"model": "m", "prompt": "p"})
    assert convert.generate_messages(body) == [("user", "p")]


@pytest.mark.parametrize(("param", "renamed"), [
    ("max_tokens", "options.num_predict"), ("temperature", "options.temperature"),
    ("stop[1]", "options.stop[1]"), ("response_format.schema", "format.schema"),
    ("messages[0].content", "messages[0].content"), ("model", "model")])
def test_service_errors_name_the_ollama_field(param: str, renamed: str) -> None:
    error = convert.ollama_error(APIError(400, f"{param}: too big", param=param))
    assert (error.param, error.message) == (renamed, f"{renamed}: too big")


def test_generate_errors_about_messages_name_the_prompt() -> None:
    error = APIError(400, "messages[0].content: too long", param="messages[0].content")
    assert convert.ollama_error(error, generate=True).message == "prompt: too long"


@pytest.mark.parametrize(("options", "field"), [
    ({"top_k": 40}, "top_k"), ({"repeat_penalty": 1.1}, "repeat_penalty"),
    ({"mirostat": 2}, "mirostat"), ({"min_p": 0.05}, "min_p"), ({"temperature": 3}, "temperature"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"), ({"seed": "1"}, "seed"), ({"x": 1}, "x")])
def test_options_that_would_be_ignored_are_refused(options: dict, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        OllamaOptions.model_validate(options)
    assert refused.value.errors()[0]["loc"][0] == field


def test_ollamas_default_tag_names_the_catalog_model() -> None:
    body = OllamaChatRequest.model_validate({"model": "mistral:latest", "messages": HI})
    assert convert.turn(body, convert.chat_messages(body)).model == "mistral"
    assert OllamaChatRequest.model_validate({"model": "llama3.2:3b"}).model == "llama3.2:3b"


def test_a_tag_alone_is_no_model_name() -> None:
    with pytest.raises(ValidationError, match="not only the tag"):
        OllamaChatRequest.model_validate({"model": ":latest", "messages": HI})


def test_a_negative_seed_draws_at_random_as_in_ollama() -> None:
    """-1 is Ollama's default seed: no fixed seed, and so no cached reply."""
    for seed in (-1, -7):
        turn = chat_turn(options={"seed": seed})
        assert not turn.sampling.HasField("seed") and turn.seed is None
    assert chat_turn(options={"seed": 0}).sampling.seed == 0


def test_a_blank_system_prompt_is_left_out() -> None:
    body = OllamaGenerateRequest.model_validate({"model": "mistral", "prompt": "hi",
                                                 "system": "  "})
    assert convert.generate_messages(body) == [("user", "hi")]
