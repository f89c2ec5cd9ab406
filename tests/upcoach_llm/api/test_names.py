"""The enum names derived from the proto are the ones the guide, the config files and OpenAI use."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from upcoach_llm.api import common_pb2, model_registry_pb2, names, router_pb2


def test_each_enum_has_the_names_its_callers_use() -> None:
    assert names.ROLE_VALUES == {"system": common_pb2.ROLE_SYSTEM, "user": common_pb2.ROLE_USER,
                                 "assistant": common_pb2.ROLE_ASSISTANT}
    assert names.FINISH_REASON_VALUES == {
        "stop": common_pb2.FINISH_REASON_STOP, "length": common_pb2.FINISH_REASON_LENGTH,
        "content_filter": common_pb2.FINISH_REASON_CONTENT_FILTER}
    assert names.BACKEND_TYPE_VALUES == {"embedded": common_pb2.BACKEND_TYPE_EMBEDDED,
                                         "ollama": common_pb2.BACKEND_TYPE_OLLAMA,
                                         "openai": common_pb2.BACKEND_TYPE_OPENAI}
    assert names.MODEL_KIND_VALUES == {"chat": model_registry_pb2.MODEL_KIND_CHAT,
                                       "embedding": model_registry_pb2.MODEL_KIND_EMBEDDING}
    assert names.PLATFORM_VALUES == {"ios": model_registry_pb2.PLATFORM_IOS,
                                     "android": model_registry_pb2.PLATFORM_ANDROID}
    assert names.INFERENCE_TARGET_VALUES == {
        "on_device": router_pb2.INFERENCE_TARGET_ON_DEVICE,
        "server": router_pb2.INFERENCE_TARGET_SERVER}
    assert names.RESPONSE_FORMAT_TYPE_VALUES == {
        "text": common_pb2.RESPONSE_FORMAT_TYPE_TEXT,
        "json_object": common_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT,
        "json_schema": common_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA}
    assert names.SAFETY_CATEGORY_VALUES == {
        "self_harm": common_pb2.SAFETY_CATEGORY_SELF_HARM,
        "harm_to_others": common_pb2.SAFETY_CATEGORY_HARM_TO_OTHERS,
        "medical_emergency": common_pb2.SAFETY_CATEGORY_MEDICAL_EMERGENCY}


def test_inference_modes_are_the_guides_camel_case_names_in_its_order() -> None:
    assert names.INFERENCE_MODES == (
        "serverOnly", "onDeviceOnly", "onDevicePreferred", "serverPreferred", "auto")
    assert names.INFERENCE_MODE_VALUES["onDevicePreferred"] == (
        router_pb2.INFERENCE_MODE_ON_DEVICE_PREFERRED)


def test_names_and_values_are_inverse_and_unspecified_has_no_name() -> None:
    tables = [(names.ROLE_NAMES, names.ROLE_VALUES),
              (names.FINISH_REASON_NAMES, names.FINISH_REASON_VALUES),
              (names.BACKEND_TYPE_NAMES, names.BACKEND_TYPE_VALUES),
              (names.MODEL_KIND_NAMES, names.MODEL_KIND_VALUES),
              (names.PLATFORM_NAMES, names.PLATFORM_VALUES),
              (names.INFERENCE_MODE_NAMES, names.INFERENCE_MODE_VALUES),
              (names.INFERENCE_TARGET_NAMES, names.INFERENCE_TARGET_VALUES),
              (names.RESPONSE_FORMAT_TYPE_NAMES, names.RESPONSE_FORMAT_TYPE_VALUES),
              (names.SAFETY_CATEGORY_NAMES, names.SAFETY_CATEGORY_VALUES)]
    for by_number, by_name in tables:
        assert 0 not in by_number
        assert {number: name for name, number in by_name.items()} == by_number


def test_the_literal_types_admit_exactly_the_names() -> None:
    assert get_args(names.FinishReasonName) == ("stop", "length", "content_filter")
    assert get_args(names.BackendTypeName) == ("embedded", "ollama", "openai")
    assert get_args(names.ModelKindName) == ("chat", "embedding")
    assert get_args(names.PlatformName) == ("ios", "android")
    assert get_args(names.InferenceModeName) == names.INFERENCE_MODES
    assert get_args(names.InferenceTargetName) == ("on_device", "server")
    assert get_args(names.ResponseFormatTypeName) == ("text", "json_object", "json_schema")
    assert get_args(names.SafetyCategoryName) == ("self_harm", "harm_to_others",
                                                  "medical_emergency")


def test_the_module_imports_nothing_of_the_server_packages() -> None:
    imported = {line.split()[1] for line in Path(names.__file__).read_text().splitlines()
                if line.startswith(("import ", "from "))}
    assert imported <= {"__future__", "collections.abc", "typing",
                        "google.protobuf.internal.enum_type_wrapper", "."}
