"""The names the APIs, config files and clients use for the upcoach.llm.v1 enums.

Each table is derived from the enum's value names with its prefix dropped: FINISH_REASON_STOP is
"stop", PLATFORM_IOS "ios", INFERENCE_TARGET_ON_DEVICE "on_device",
SAFETY_CATEGORY_SELF_HARM "self_harm"; inference modes are the
guide's camelCase, INFERENCE_MODE_ON_DEVICE_PREFERRED "onDevicePreferred". ``*_UNSPECIFIED`` has
no name. ``*_NAMES`` maps the proto number to the name, ``*_VALUES`` the name to the number, in
the proto's order; ``*Name`` is the Literal type of the names, for pydantic models and
dataclasses. This module imports the generated stubs and nothing else, so the client
distribution can share it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from . import common_pb2, model_registry_pb2, router_pb2


def _camel(words: str) -> str:
    first, *rest = words.lower().split("_")
    return first + "".join(word.capitalize() for word in rest)


def _names(enum: EnumTypeWrapper, prefix: str,
           spell: Callable[[str], str] = str.lower) -> dict[int, str]:
    return {number: spell(name.removeprefix(prefix)) for name, number in enum.items()
            if not name.endswith("_UNSPECIFIED")}


def _values(names: dict[int, str]) -> dict[str, int]:
    return {name: number for number, name in names.items()}


ROLE_NAMES = _names(common_pb2.Role, "ROLE_")
ROLE_VALUES = _values(ROLE_NAMES)
FINISH_REASON_NAMES = _names(common_pb2.FinishReason, "FINISH_REASON_")
FINISH_REASON_VALUES = _values(FINISH_REASON_NAMES)
BACKEND_TYPE_NAMES = _names(common_pb2.BackendType, "BACKEND_TYPE_")
BACKEND_TYPE_VALUES = _values(BACKEND_TYPE_NAMES)
MODEL_KIND_NAMES = _names(model_registry_pb2.ModelKind, "MODEL_KIND_")
MODEL_KIND_VALUES = _values(MODEL_KIND_NAMES)
PLATFORM_NAMES = _names(model_registry_pb2.Platform, "PLATFORM_")
PLATFORM_VALUES = _values(PLATFORM_NAMES)
INFERENCE_MODE_NAMES = _names(router_pb2.InferenceMode, "INFERENCE_MODE_", _camel)
INFERENCE_MODE_VALUES = _values(INFERENCE_MODE_NAMES)
INFERENCE_TARGET_NAMES = _names(router_pb2.InferenceTarget, "INFERENCE_TARGET_")
INFERENCE_TARGET_VALUES = _values(INFERENCE_TARGET_NAMES)
RESPONSE_FORMAT_TYPE_NAMES = _names(common_pb2.ResponseFormatType, "RESPONSE_FORMAT_TYPE_")
RESPONSE_FORMAT_TYPE_VALUES = _values(RESPONSE_FORMAT_TYPE_NAMES)
SAFETY_CATEGORY_NAMES = _names(common_pb2.SafetyCategory, "SAFETY_CATEGORY_")
SAFETY_CATEGORY_VALUES = _values(SAFETY_CATEGORY_NAMES)

INFERENCE_MODES = tuple(INFERENCE_MODE_VALUES)

FinishReasonName = Literal[tuple(FINISH_REASON_VALUES)]
BackendTypeName = Literal[tuple(BACKEND_TYPE_VALUES)]
ModelKindName = Literal[tuple(MODEL_KIND_VALUES)]
PlatformName = Literal[tuple(PLATFORM_VALUES)]
InferenceModeName = Literal[INFERENCE_MODES]
InferenceTargetName = Literal[tuple(INFERENCE_TARGET_VALUES)]
ResponseFormatTypeName = Literal[tuple(RESPONSE_FORMAT_TYPE_VALUES)]
SafetyCategoryName = Literal[tuple(SAFETY_CATEGORY_VALUES)]
