"""Service field names as the REST operation families spell them."""

from __future__ import annotations

import pytest

from upcoach_llm.gateway.fields import CHAT, EMBEDDINGS, MODELS, rest_param


@pytest.mark.parametrize(("family", "field", "param"), [
    (CHAT, "coaching_context", "context_type"),
    (CHAT, "sampling.max_tokens", "max_tokens"),
    (CHAT, "sampling.stop[2]", "stop[2]"),
    (CHAT, "messages[1].content", "messages[1].content"),
    (CHAT, "sampling_extra", "sampling_extra"),
    (CHAT, "sampling.response_format.schema_json", "response_format.json_schema.schema"),
    (CHAT, "sampling.response_format.schema_name", "response_format.json_schema.name"),
    (CHAT, "sampling.response_format.type", "response_format.type"),
    (CHAT, "sampling.logprobs", "logprobs"),
    (EMBEDDINGS, "texts", "input"),
    (EMBEDDINGS, "texts[3]", "input[3]"),
    (MODELS, "name", "model"),
    (MODELS, "names", "names"),
    (None, "sampling.max_tokens", "sampling.max_tokens"),
])
def test_rest_param(family: str | None, field: str, param: str) -> None:
    assert rest_param(family, field) == param
