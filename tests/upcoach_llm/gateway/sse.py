"""Reading an SSE response in tests: the JSON payloads, and whether it ended with [DONE]."""

from __future__ import annotations

import json
from typing import Any


def parse(text: str) -> tuple[list[dict[str, Any]], bool]:
    """(payloads, done): every ``data:`` event as JSON, and whether the last one was [DONE];
    comment lines (``: ...``) are skipped as SSE clients skip them."""
    events = [block.removeprefix("data: ") for block in text.split("\n\n")
              if block.strip() and not block.startswith(":")]
    done = bool(events) and events[-1] == "[DONE]"
    assert events.count("[DONE]") == (1 if done else 0), text
    return [json.loads(e) for e in events if e != "[DONE]"], done


def content(payloads: list[dict[str, Any]]) -> str:
    return "".join(c["delta"].get("content") or "" for p in payloads for c in p.get("choices", []))


def comments(text: str) -> list[str]:
    return [block[1:].strip() for block in text.split("\n\n") if block.startswith(":")]
