"""The hybrid clients' five modes, as the guide's _shouldUseOnDevice says, with real inference
on both sides: the router and generation processes (server) and llama.cpp in this process (on
device). "Offline" is an address where nothing listens.

The expected table is written out here, from the guide, not computed with the function under
test: every mode × online/offline × short/long prompt, with the on-device model present, then
the cases where it is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from upcoach_client import (
    AsyncHybridClient,
    AsyncUpcoachClient,
    HybridClient,
    OnDeviceModel,
    UpcoachError,
)

pytestmark = pytest.mark.integration
SHORT = "Quick tip for focus?"
LONG = ("I keep starting new habits and dropping them after a week or two. Explain why this "
        "keeps happening and build me a realistic plan for the next month, with one small "
        "step per week and a way to track progress that I will not abandon.")
ERROR = "error"

# (mode, online) -> (short prompt, long prompt), with the on-device model available.
TABLE = {
    ("serverOnly", True): ("server", "server"),
    ("serverOnly", False): (ERROR, ERROR),
    ("onDeviceOnly", True): ("on_device", "on_device"),
    ("onDeviceOnly", False): ("on_device", "on_device"),
    ("onDevicePreferred", True): ("on_device", "on_device"),
    ("onDevicePreferred", False): ("on_device", "on_device"),
    ("serverPreferred", True): ("server", "server"),
    ("serverPreferred", False): ("on_device", "on_device"),
    ("auto", True): ("on_device", "server"),
    ("auto", False): ("on_device", "on_device"),
}
# The same without an on-device model: what ran on the device now has nowhere to go.
WITHOUT_DEVICE = {
    ("onDevicePreferred", True): ("server", "server"),
    ("onDevicePreferred", False): (ERROR, ERROR),
    ("serverPreferred", False): (ERROR, ERROR),
    ("onDeviceOnly", True): (ERROR, ERROR),
    ("auto", False): (ERROR, ERROR),
}


def test_the_table_covers_every_mode_and_connectivity() -> None:
    from upcoach_llm.api.names import INFERENCE_MODES

    assert set(TABLE) == {(mode, online) for mode in INFERENCE_MODES for online in (True, False)}
    assert len(LONG) > 200 and len(SHORT.split()) < 25


def outcome(client: HybridClient, prompt: str) -> tuple[str, str]:
    """Where the reply came from (or ERROR with the status code), and the decision's reason."""
    try:
        reply = client.chat([("user", prompt)], max_tokens=4, temperature=0)
    except UpcoachError as exc:
        return ERROR, exc.code.name
    assert reply.text.strip() or reply.usage.completion_tokens > 0
    return reply.source, reply.decision


@pytest.mark.parametrize(("mode", "is_online"), list(TABLE), ids=[
    f"{mode}-{'online' if up else 'offline'}" for mode, up in TABLE])
def test_truth_table_with_the_device_model(mode, is_online, online, offline) -> None:
    with HybridClient(online if is_online else offline, mode) as client:
        short, long = outcome(client, SHORT), outcome(client, LONG)
    assert (short[0], long[0]) == TABLE[(mode, is_online)], (short, long)
    for source, detail in (short, long):
        if source == ERROR:
            assert detail == "UNAVAILABLE"
        else:
            assert detail.startswith(f"{mode}:")


@pytest.mark.parametrize(("mode", "is_online"), list(WITHOUT_DEVICE), ids=[
    f"{mode}-{'online' if up else 'offline'}" for mode, up in WITHOUT_DEVICE])
def test_truth_table_without_the_device_model(mode, is_online, online, offline,
                                              tmp_path: Path) -> None:
    missing = OnDeviceModel(tmp_path / "absent.gguf")
    assert not missing.available
    with HybridClient(online if is_online else offline, mode, on_device=missing) as client:
        results = (outcome(client, SHORT), outcome(client, LONG))
    assert tuple(r[0] for r in results) == WITHOUT_DEVICE[(mode, is_online)], results
    expected_code = "UNAVAILABLE" if mode in ("serverOnly", "serverPreferred",
                                              "onDevicePreferred") else "FAILED_PRECONDITION"
    assert all(r[1] == expected_code for r in results if r[0] == ERROR)


def test_after_an_unreachable_server_the_next_calls_go_straight_to_the_device(offline) -> None:
    with HybridClient(offline, "serverPreferred", offline_recheck_s=60) as client:
        first = client.chat([("user", SHORT)], max_tokens=4)
        assert first.source == "on_device" and "unreachable" in first.decision
        assert not client._client.server_available
        assert client.decide(SHORT).on_device


def test_online_the_server_decides_and_offline_the_client_rule(online, offline) -> None:
    with HybridClient(online, "auto", max_prompt_length=5) as client:
        decided = client.decide(SHORT)
    assert (decided.target, decided.reason) == ("server", f"auto: long prompt ({len(SHORT)} > 5 "
                                                          "characters)")
    with HybridClient(offline, "onDevicePreferred", on_device=OnDeviceModel("/absent.gguf"),
                      ) as client:
        decided = client.decide(SHORT)
    assert (decided.target, decided.reason) == (
        "server", "onDevicePreferred: no on-device model and the server is unreachable")


def test_streaming_on_the_device_with_the_blocking_client(offline) -> None:
    with HybridClient(offline, "onDeviceOnly") as client:
        chunks = list(client.chat_stream([("user", SHORT)], max_tokens=8, temperature=0))
    assert all(c.source == "on_device" for c in chunks)
    assert chunks[0].decision == "onDeviceOnly: always the device"
    assert chunks[-1].finish_reason in ("stop", "length") and chunks[-1].usage.completion_tokens


async def test_the_async_hybrid_client(online) -> None:
    client = AsyncHybridClient(AsyncUpcoachClient(online), "auto")
    try:
        near = await client.chat([("user", SHORT)], max_tokens=4, temperature=0)
        far = await client.chat([("user", LONG)], max_tokens=4, temperature=0)
    finally:
        await client.close()
    assert (near.source, far.source) == ("on_device", "server")
    assert near.route is None and far.route.backend == "embedded"
    assert "long prompt" in far.decision


def test_a_server_only_feature_stays_on_the_server_and_a_device_one_names_its_model(
        online) -> None:
    """The guide's table: mood analysis has no edge model; habit tips run on smollm-360m."""
    with HybridClient(online, "auto") as client:
        mood = client.decide(SHORT, feature="mood_analysis")
        tip = client.decide(SHORT, feature="habit_tips")
        context = client.decide(SHORT, coaching_context="mood")  # implies mood_analysis
        chunks = list(client.chat_stream([("user", SHORT)], feature="mood_analysis",
                                         max_tokens=4, temperature=0))
    assert (mood.target, mood.edge_model) == ("server", None)
    assert (tip.target, tip.edge_model) == ("on_device", "smollm-360m")
    assert (context.target, context.edge_model) == ("server", None)
    assert chunks[0].source == "server"


def test_an_unknown_mode_is_refused(online) -> None:
    with pytest.raises(ValueError, match="sometimes"):
        HybridClient(online, "sometimes")
