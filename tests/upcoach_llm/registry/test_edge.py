"""Edge model selection: platform formats, RAM limits and the guide's defaults."""

from __future__ import annotations

import pytest

from upcoach_llm.common.catalog import load_edge_models
from upcoach_llm.common.errors import InvalidArgument
from upcoach_llm.registry.edge import select_edge_models

CATALOG = load_edge_models()


def ids(platform: str, ram: float) -> tuple[list[str], str]:
    selection = select_edge_models(CATALOG, platform, ram)
    return [m.id for m in selection.models], selection.default_id


@pytest.mark.parametrize(("platform", "ram", "models", "default"), [
    ("ios", 6, ["tinyllama-1.1b", "smollm-360m"], "tinyllama-1.1b"),
    ("android", 4, ["tinyllama-1.1b", "smollm-360m"], "tinyllama-1.1b"),
    ("android", 3, ["tinyllama-1.1b", "smollm-360m"], "tinyllama-1.1b"),
    ("ios", 2.5, ["smollm-360m"], "smollm-360m"),
    ("android", 2, ["smollm-360m"], "smollm-360m"),
    ("android", 1, [], ""),
])
def test_models_and_default_per_device(platform: str, ram: float, models: list[str],
                                       default: str) -> None:
    assert ids(platform, ram) == (models, default)


def test_formats_are_those_the_platform_can_load() -> None:
    ios = {m.id: sorted(m.formats) for m in select_edge_models(CATALOG, "ios", 8).models}
    android = {m.id: sorted(m.formats) for m in select_edge_models(CATALOG, "android", 8).models}
    assert ios["tinyllama-1.1b"] == ["coreml", "onnx"]
    assert android["tinyllama-1.1b"] == ["onnx"]
    tiny = select_edge_models(CATALOG, "android", 8).models[0].formats["onnx"]
    assert (tiny.url, tiny.size_mb, tiny.quantization) == (
        "https://models.upcoach.com/tinyllama-1.1b-q4.onnx", 580, "int4")


@pytest.mark.parametrize(("platform", "ram", "field"), [
    ("windows", 4, "platform: windows is not one of ios, android"),
    ("", 4, r"platform: \(empty\)"),
    ("ios", 0, "ram_gb: must be in"),
    ("ios", -3, "ram_gb: must be in"),
    ("ios", 5000, "ram_gb: must be in"),
])
def test_bad_device_is_invalid_argument(platform: str, ram: float, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        select_edge_models(CATALOG, platform, ram)
