"""The judgements verify-llm-stack.sh delegates to scripts/verify_checks.py."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.support.paths import REPO_ROOT


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_checks",
                                                  REPO_ROOT / "scripts/verify_checks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = load()


def reply(text: str) -> dict:
    return {"model": "m", "choices": [{"message": {"role": "assistant", "content": text}}]}


def test_chat_quality_accepts_words_and_rejects_noise() -> None:
    assert checks.chat_quality(reply("Walk for ten minutes after lunch.")).startswith("PASS")
    assert checks.chat_quality(reply("ok")).startswith("FAIL\ttoo short")
    assert checks.chat_quality(reply("#### 1234 5678 !!!! ???? a b c")).startswith(
        "FAIL\tmostly not letters")
    assert checks.chat_quality(reply("go " * 20)).startswith("FAIL\trepetitive")
    assert checks.chat_quality({}).startswith("FAIL")


def test_embedding_quality_needs_related_closer_than_unrelated() -> None:
    good = {"data": [{"embedding": [1, 0, 0]}, {"embedding": [0.9, 0.1, 0]},
                     {"embedding": [0, 0, 1]}]}
    bad = {"data": [{"embedding": [1, 0, 0]}, {"embedding": [0, 0, 1]},
                    {"embedding": [0.9, 0.1, 0]}]}
    assert checks.embedding_quality(good).startswith("PASS")
    assert checks.embedding_quality(bad).startswith("FAIL")
    assert checks.embedding_quality({"embeddings": [[1.0]]}).startswith("FAIL")


def test_health_rows_name_each_part() -> None:
    rows = checks.health({"status": "degraded",
                          "services": {"router": "healthy", "embedding": "unhealthy"},
                          "details": {"embedding": "UNAVAILABLE: connection refused"}})
    assert rows == ["embedding\tFAIL\tunhealthy: UNAVAILABLE: connection refused",
                    "router\tPASS\thealthy"]


def test_error_message_of_the_gateway_error_shape() -> None:
    assert checks.error({"error": {"message": "model not found", "type": "x"}}) == (
        "model not found")
    assert checks.error(None) == ""
