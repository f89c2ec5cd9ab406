"""The guide's hybrid on-device/server decision (_shouldUseOnDevice), as a pure function."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from upcoach_llm.router.policy import HybridFile

_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


@dataclass(frozen=True)
class InferenceDecision:
    """Where to run a prompt, why, and whether it counted as simple."""

    on_device: bool
    reason: str
    simple_query: bool


@lru_cache(maxsize=8)
def _markers(markers: tuple[str, ...]) -> re.Pattern[str] | None:
    if not markers:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(m) for m in markers) + r")\b", re.IGNORECASE)


def is_simple_query(prompt: str, policy: HybridFile) -> bool:
    """Few words, few sentences and no marker of analysis or planning."""
    rules = policy.simple_query
    if len(prompt.split()) > rules.max_words:
        return False
    if len(_SENTENCE_END.findall(prompt.strip())) > rules.max_sentences:
        return False
    markers = _markers(tuple(rules.complex_markers))
    return markers is None or markers.search(prompt) is None


def decide(mode: str, *, prompt: str, server_available: bool, on_device_available: bool,
           policy: HybridFile, max_prompt_length: int | None = None) -> InferenceDecision:
    """The guide's switch, case by case; mode is one of upcoach_llm.api.names.INFERENCE_MODES."""
    simple = is_simple_query(prompt, policy)
    limit = max_prompt_length or policy.on_device_max_prompt_length
    if mode == "serverOnly":
        return InferenceDecision(False, "serverOnly: always the server", simple)
    if mode == "onDeviceOnly":
        return InferenceDecision(True, "onDeviceOnly: always the device", simple)
    if mode == "onDevicePreferred":
        if on_device_available:
            return InferenceDecision(True, "onDevicePreferred: the on-device model is available",
                                     simple)
        return InferenceDecision(False, "onDevicePreferred: no on-device model, using the server",
                                 simple)
    if mode == "serverPreferred":
        if not server_available and on_device_available:
            return InferenceDecision(True, "serverPreferred: the server is unreachable, using "
                                     "the on-device model", simple)
        return InferenceDecision(False, "serverPreferred: using the server", simple)
    if mode != "auto":
        raise ValueError(f"unknown mode {mode!r}")
    if not server_available:
        return InferenceDecision(True, "auto: the server is unreachable", simple)
    length = dart_length(prompt)
    if length <= limit:
        if simple:
            return InferenceDecision(True, f"auto: short ({length} ≤ {limit} characters) "
                                     "and simple", simple)
        return InferenceDecision(False, f"auto: short ({length} ≤ {limit} characters) "
                                 "but not simple", simple)
    return InferenceDecision(False, f"auto: long prompt ({length} > {limit} characters)",
                             simple)


def dart_length(text: str) -> int:
    """``String.length`` as the app's Dart counts it: UTF-16 code units (an emoji is 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2
