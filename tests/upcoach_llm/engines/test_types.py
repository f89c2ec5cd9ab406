"""The backend-type registry: one entry per proto BackendType, each with what it brings."""

from __future__ import annotations

import pytest

from upcoach_llm.api.names import BACKEND_TYPE_VALUES
from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.errors import FailedPrecondition
from upcoach_llm.engines.types import TYPES, type_of
from upcoach_llm.registry.pull import can_pull, puller_for

EMBEDDED = BackendConfig(name="embedded", type="embedded", models=["all-minilm-l6-v2"])
OLLAMA = BackendConfig(name="ollama", type="ollama", url="http://127.0.0.1:9", models=["mistral"])
VLLM = BackendConfig(name="vllm", type="openai", url="http://127.0.0.1:9/v1", models=["mistral"])


def test_every_proto_backend_type_is_registered_under_its_name() -> None:
    assert list(TYPES) == list(BACKEND_TYPE_VALUES)
    assert all(kind.name == name for name, kind in TYPES.items())


def test_each_type_brings_both_engines_and_a_probe() -> None:
    for kind in TYPES.values():
        assert kind.chat_engine and kind.embedding_engine and kind.probe, kind.name


def test_the_facts_the_services_ask() -> None:
    assert [t.name for t in TYPES.values() if t.in_process] == ["embedded"]
    assert [t.name for t in TYPES.values() if t.pulls_models] == ["ollama"]
    assert type_of(VLLM).pull is None and "VLLM_MODEL" in type_of(VLLM).no_pull_reason


def test_which_pulls_make_sense() -> None:
    assert can_pull(EMBEDDED, "all-minilm-l6-v2") and not can_pull(EMBEDDED, "mistral")
    assert can_pull(OLLAMA, "llama3.2:3b")
    assert not can_pull(VLLM, "mistral")


async def test_a_type_without_a_puller_refuses_with_its_reason() -> None:
    with pytest.raises(FailedPrecondition, match=r"vllm \(openai\) cannot pull models: .*"
                                                 r"loads its model at start-up"):
        async for _ in puller_for(VLLM)(VLLM, "mistral"):
            pass


def test_a_remote_type_needs_a_url_and_the_in_process_one_does_not() -> None:
    with pytest.raises(ValueError, match="type ollama needs a url"):
        BackendConfig(name="ollama", type="ollama")
    assert BackendConfig(name="embedded", type="embedded").url is None
