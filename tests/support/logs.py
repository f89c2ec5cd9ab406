"""Reads the JSON log lines a service process of a test stack wrote."""

from __future__ import annotations

import json
import os

from upcoach_llm.dev.stack import Stack


def log_lines(stack: Stack, service: str = "generation") -> list[dict]:
    """Every JSON line in the service's log file, in order."""
    assert stack.log_dir is not None
    with open(os.path.join(stack.log_dir, f"{service}.log"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.startswith("{")]
