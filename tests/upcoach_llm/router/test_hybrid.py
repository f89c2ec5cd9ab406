"""The guide's _shouldUseOnDevice truth table: every mode × online/offline × short/long prompt.

The on-device model is available in these rows; the onDevicePreferred and serverPreferred
rows that depend on it are checked with it unavailable too.
"""

from __future__ import annotations

import pytest

from upcoach_llm.router.hybrid import decide, is_simple_query
from upcoach_llm.router.policy import RouterPolicy

SHORT = "Give me a quick affirmation"
LONG = "I have been trying to get fit " * 10  # 300 characters: over the 200 limit
SHORT_COMPLEX = "Why do I keep procrastinating?"
DEVICE, SERVER = True, False

# mode, server_available, prompt, expected on_device (on-device model available)
TABLE = [
    ("serverOnly", True, SHORT, SERVER), ("serverOnly", True, LONG, SERVER),
    ("serverOnly", False, SHORT, SERVER), ("serverOnly", False, LONG, SERVER),
    ("onDeviceOnly", True, SHORT, DEVICE), ("onDeviceOnly", True, LONG, DEVICE),
    ("onDeviceOnly", False, SHORT, DEVICE), ("onDeviceOnly", False, LONG, DEVICE),
    ("onDevicePreferred", True, SHORT, DEVICE), ("onDevicePreferred", True, LONG, DEVICE),
    ("onDevicePreferred", False, SHORT, DEVICE), ("onDevicePreferred", False, LONG, DEVICE),
    ("serverPreferred", True, SHORT, SERVER), ("serverPreferred", True, LONG, SERVER),
    ("serverPreferred", False, SHORT, DEVICE), ("serverPreferred", False, LONG, DEVICE),
    ("auto", True, SHORT, DEVICE), ("auto", True, LONG, SERVER),
    ("auto", False, SHORT, DEVICE), ("auto", False, LONG, DEVICE),
]


@pytest.mark.parametrize(("mode", "online", "prompt", "expected"), TABLE)
def test_truth_table(policy: RouterPolicy, mode: str, online: bool, prompt: str,
                     expected: bool) -> None:
    decision = decide(mode, prompt=prompt, server_available=online, on_device_available=True,
                      policy=policy.hybrid)
    assert decision.on_device is expected
    assert decision.reason.startswith(mode)


@pytest.mark.parametrize(("mode", "online", "expected"), [
    ("onDevicePreferred", True, SERVER), ("onDevicePreferred", False, SERVER),
    ("serverPreferred", False, SERVER), ("serverPreferred", True, SERVER),
    ("onDeviceOnly", True, DEVICE), ("auto", False, DEVICE),
])
def test_without_an_on_device_model(policy: RouterPolicy, mode: str, online: bool,
                                    expected: bool) -> None:
    decision = decide(mode, prompt=SHORT, server_available=online, on_device_available=False,
                      policy=policy.hybrid)
    assert decision.on_device is expected


def test_auto_sends_short_but_complex_prompts_to_the_server(policy: RouterPolicy) -> None:
    decision = decide("auto", prompt=SHORT_COMPLEX, server_available=True,
                      on_device_available=True, policy=policy.hybrid)
    assert decision.on_device is False
    assert "not simple" in decision.reason


def test_auto_prompt_length_limit_is_inclusive_and_overridable(policy: RouterPolicy) -> None:
    prompt = "tip " * 50  # 200 characters
    assert len(prompt) == policy.hybrid.on_device_max_prompt_length
    assert not is_simple_query(prompt, policy.hybrid)  # 50 words: over max_words
    exact = "a" * 200
    assert decide("auto", prompt=exact, server_available=True, on_device_available=True,
                  policy=policy.hybrid).on_device is True
    assert decide("auto", prompt=exact + "a", server_available=True, on_device_available=True,
                  policy=policy.hybrid).on_device is False
    assert decide("auto", prompt=SHORT, server_available=True, on_device_available=True,
                  policy=policy.hybrid, max_prompt_length=10).on_device is False


def test_prompt_length_counts_utf16_units_as_the_apps_dart_does(policy: RouterPolicy) -> None:
    smiles = "\U0001F642" * 150  # 150 code points, 300 UTF-16 units: Dart's length is 300
    decision = decide("auto", prompt=smiles, server_available=True, on_device_available=True,
                      policy=policy.hybrid)
    assert decision.on_device is False and "300 > 200" in decision.reason
    assert decide("auto", prompt="é" * 200, server_available=True, on_device_available=True,
                  policy=policy.hybrid).on_device is True


@pytest.mark.parametrize(("prompt", "simple"), [
    ("Give me a quick affirmation", True),
    ("Remind me to drink water.", True),
    ("Explain how habits form", False),
    ("Compare running and swimming", False),
    ("One. Two. Three. Four.", False),
])
def test_simple_query(policy: RouterPolicy, prompt: str, simple: bool) -> None:
    assert is_simple_query(prompt, policy.hybrid) is simple
