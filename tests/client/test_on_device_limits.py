"""The on-device model refuses what the server refuses, with the server's codes: sampling out
of range is INVALID_ARGUMENT naming the field (before a model is even loaded), a conversation
past the context window OUT_OF_RANGE naming messages (real llama.cpp, the packaged SmolLM2)."""

from __future__ import annotations

import grpc
import pytest

from upcoach_client import OnDeviceModel, UpcoachError
from upcoach_client.types import Message


@pytest.mark.parametrize(("options", "field"), [
    ({"max_tokens": 0}, "sampling.max_tokens"), ({"max_tokens": -1}, "sampling.max_tokens"),
    ({"temperature": 5.0}, "sampling.temperature"),
    ({"temperature": float("nan")}, "sampling.temperature"),
    ({"top_p": 0.0}, "sampling.top_p"),
])
async def test_sampling_out_of_range_is_invalid_argument(options: dict, field: str) -> None:
    model = OnDeviceModel("/absent.gguf")
    with pytest.raises(UpcoachError) as caught:
        _ = [c async for c in model.stream([Message("user", "hi")], **options)]
    assert (caught.value.code, caught.value.field) == (grpc.StatusCode.INVALID_ARGUMENT, field)


async def test_a_conversation_past_the_context_window_is_out_of_range() -> None:
    model = OnDeviceModel(n_ctx=64, n_threads=1)
    try:
        with pytest.raises(UpcoachError) as caught:
            _ = [c async for c in model.stream([Message("user", "tell me more " * 60)],
                                               max_tokens=4)]
    finally:
        await model.close()
    assert (caught.value.code, caught.value.field) == (grpc.StatusCode.OUT_OF_RANGE, "messages")
