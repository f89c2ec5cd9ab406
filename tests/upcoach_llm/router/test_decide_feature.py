"""DecideInference with the app's feature: the guide's "Server only" rows (no edge model in
features.yaml) are always decided for the server, other features name their edge model, and an
unknown feature is INVALID_ARGUMENT naming it."""

from __future__ import annotations

import pytest

from upcoach_llm.api import router_pb2
from upcoach_llm.common.chat import SamplingDefaults
from upcoach_llm.common.errors import InvalidArgument
from upcoach_llm.router.policy import RouterPolicy
from upcoach_llm.router.safety.check import SafetyCheck
from upcoach_llm.router.servicer import RouterServicer

AUTO, DEVICE_ONLY = router_pb2.INFERENCE_MODE_AUTO, router_pb2.INFERENCE_MODE_ON_DEVICE_ONLY
DEVICE, SERVER = router_pb2.INFERENCE_TARGET_ON_DEVICE, router_pb2.INFERENCE_TARGET_SERVER


async def decide(policy: RouterPolicy, **fields) -> router_pb2.DecideInferenceResponse:
    servicer = RouterServicer(policy, None, None, SamplingDefaults(), 0.0,  # type: ignore[arg-type]
                              SafetyCheck.off())
    return await servicer.DecideInference(router_pb2.DecideInferenceRequest(
        prompt="Quick tip?", server_available=True, on_device_available=True, **fields), None)


@pytest.mark.parametrize("feature", ["mood_analysis", "voice_coaching", "recommendations",
                                     "content_search"])
@pytest.mark.parametrize("mode", [AUTO, DEVICE_ONLY])
async def test_a_server_only_feature_is_decided_for_the_server(policy, feature, mode) -> None:
    assert policy.features.features[feature].edge_model is None
    reply = await decide(policy, mode=mode, feature=feature)
    assert (reply.target, reply.edge_model) == (SERVER, "")
    assert reply.reason.startswith(f"feature {feature}: server only")


async def test_an_edge_feature_is_decided_by_the_mode_and_names_its_edge_model(policy) -> None:
    reply = await decide(policy, mode=AUTO, feature="habit_tips")
    assert (reply.target, reply.edge_model) == (DEVICE, "smollm-360m")
    assert (await decide(policy, mode=AUTO)).target == DEVICE, "no feature: the mode decides"


@pytest.mark.parametrize("feature", ["astrology", "x" * 201])
async def test_an_unknown_feature_is_refused_naming_it(policy, feature) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await decide(policy, mode=AUTO, feature=feature)
    assert caught.value.field == "feature"


async def test_a_coaching_context_decides_as_the_feature_it_implies(policy) -> None:
    """As ChatStream reads it: mood -> mood_analysis (server only), habits -> habit_tips."""
    mood = await decide(policy, mode=DEVICE_ONLY, coaching_context="mood")
    assert (mood.target, mood.edge_model, mood.feature) == (SERVER, "", "mood_analysis")
    assert mood.reason == ("coaching context mood → feature mood_analysis: server only "
                           "(no edge model)")
    habits = await decide(policy, mode=AUTO, coaching_context="habits")
    assert (habits.target, habits.edge_model, habits.feature) == (
        DEVICE, "smollm-360m", "habit_tips")
    both = await decide(policy, mode=AUTO, coaching_context="mood", feature="habit_tips")
    assert (both.target, both.feature) == (DEVICE, "habit_tips"), "the feature wins"
    assert (await decide(policy, mode=AUTO)).feature == "", "neither: no feature"


@pytest.mark.parametrize("fields", [{"coaching_context": "astrology"},
                                    {"coaching_context": "astrology", "feature": "habit_tips"},
                                    {"coaching_context": "x" * 201}])
async def test_an_unknown_coaching_context_is_refused_naming_it(policy, fields) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await decide(policy, mode=AUTO, **fields)
    assert caught.value.field == "coaching_context"
