"""Request and response shapes of the on-device endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from upcoach_llm.api.names import (
    InferenceModeName,
    InferenceTargetName,
    PlatformName,
    SafetyCategoryName,
)
from upcoach_llm.common.limits import INT32_MAX, MAX_MESSAGES, MAX_PROMPT_CHARS, MAX_RAM_GB
from upcoach_llm.gateway.chat.protocol import ChatMessageIn
from upcoach_llm.gateway.http.text import Name, text

Prompt = text(MAX_PROMPT_CHARS, blank=False)


class EdgeQuery(BaseModel):
    """The query string of GET /api/models/edge."""

    model_config = ConfigDict(extra="ignore")

    platform: PlatformName
    ram_gb: float = Field(gt=0, le=MAX_RAM_GB, allow_inf_nan=False,
                          description="device RAM in GB")


class EdgeFormat(BaseModel):
    """One downloadable file of an edge model."""

    format: str = Field(description="onnx, coreml or tflite")
    url: str
    size_mb: int
    quantization: str | None = Field(description="e.g. int4; null when not stated")
    sha256: str | None = Field(description="hex SHA-256 of the file; null until published")


class EdgeModel(BaseModel):
    """An on-device model that fits the device, with the formats usable on its platform."""

    id: str
    name: str
    description: str
    platforms: list[str]
    capabilities: list[str]
    max_context: int
    min_device_ram_gb: float
    formats: list[EdgeFormat]


class EdgeModelsResponse(BaseModel):
    """The edge models for a device and its default (the guide's defaults: ios, android,
    low_memory when the platform default does not fit)."""

    platform: str
    ram_gb: float
    default_model: str | None
    models: list[EdgeModel]


class DecideRequest(BaseModel):
    """What the app knows: its mode, the prompt or the conversation, its connectivity and its
    on-device model. ``Accept-Language`` picks the language of ``crisis_response``."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"oneOf": [
        {"required": ["prompt"]}, {"required": ["messages"]}], "examples": [
        {"mode": "auto", "prompt": "Quick tip for focus?", "on_device_available": True},
        {"mode": "auto", "on_device_available": True, "messages": [
            {"role": "user", "content": "I want to start running"},
            {"role": "assistant", "content": "Great! How often can you run?"},
            {"role": "user", "content": "Quick tip for day one?"}]}]})

    mode: InferenceModeName = "auto"
    prompt: Prompt | None = Field(
        default=None, description="the prompt to answer; required unless messages is sent, "
                                  "and refused (400) together with it")
    messages: list[ChatMessageIn] | None = Field(
        default=None, min_length=1, max_length=MAX_MESSAGES,
        description="the conversation (chat completions' messages), instead of prompt: the "
                    "crisis check reads every user message, the decision the last one")
    server_available: bool = Field(
        default=True, description="whether the app can reach the server (it just did)")
    on_device_available: bool = Field(
        default=False, description="whether an edge model is downloaded and loaded")
    on_device_max_prompt_length: int | None = Field(
        default=None, ge=1, le=INT32_MAX,
        description="auto mode's longest on-device prompt, in characters; unset takes the "
                    "server's configured value")
    feature: Name | None = Field(
        default=None, description="the app feature the prompt is for (e.g. habit_tips): a "
                                  "server-only one (mood_analysis, voice_coaching, ...) is always "
                                  "the server's; unknown: 400")
    context_type: Name | None = Field(
        default=None, description="the coaching context of the chat (as /api/coaching/chat "
                                  "takes it): without feature, the feature it implies decides "
                                  "(mood: mood_analysis, server only); unknown: 400")


class DecideResponse(BaseModel):
    """Where to run the prompt, and why."""

    target: InferenceTargetName
    use_on_device: bool
    reason: str
    simple_query: bool
    safety_category: SafetyCategoryName | None = Field(
        default=None, description="set when the crisis check flagged the prompt: the target is "
                                  "then always the server, which answers with a crisis response")
    crisis_response: str | None = Field(
        default=None, description="with safety_category: that crisis response, in the "
                                  "Accept-Language of the request (else the server's default)")
    edge_model: str | None = Field(
        default=None, description="with a feature that runs on the device: its edge model "
                                  "(an id of /api/models/edge)")
    feature: str | None = Field(
        default=None, description="the feature that decided: the request's, else the one its "
                                  "context_type implies")
