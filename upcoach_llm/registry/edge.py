"""Which edge models fit a device, and which one it should use by default (the guide's defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from upcoach_llm.common.catalog import EdgeModelEntry, EdgeModelsFile
from upcoach_llm.common.errors import InvalidArgument

# File formats each platform's runtimes load (the guide's "Supported Formats" table).
PLATFORM_FORMATS = {"ios": ("coreml", "onnx"), "android": ("onnx", "tflite")}
MAX_RAM_GB = 1024.0


@dataclass(frozen=True)
class EdgeSelection:
    """Models that fit, each with only the formats usable on the platform, and the default id."""

    models: list[EdgeModelEntry]
    default_id: str


def select_edge_models(catalog: EdgeModelsFile, platform: str, ram_gb: float) -> EdgeSelection:
    """Filters the edge catalog for a device; InvalidArgument names a bad platform or ram_gb."""
    if platform not in PLATFORM_FORMATS:
        raise InvalidArgument(f"{platform or '(empty)'!s} is not one of "
                              f"{', '.join(PLATFORM_FORMATS)}", field="platform")
    if not 0 < ram_gb <= MAX_RAM_GB:
        raise InvalidArgument(f"must be in (0, {MAX_RAM_GB:g}], got {ram_gb:g}", field="ram_gb")
    usable = PLATFORM_FORMATS[platform]
    fitting = []
    for model in catalog.edge_models:
        if platform not in model.platforms or model.min_device_ram_gb > ram_gb:
            continue
        formats = {name: spec for name, spec in model.formats.items() if name in usable}
        if formats:
            fitting.append(model.model_copy(update={"formats": formats}))
    ids = {m.id for m in fitting}
    default = getattr(catalog.defaults, platform)
    if default not in ids:
        default = catalog.defaults.low_memory if catalog.defaults.low_memory in ids else ""
    return EdgeSelection(models=fitting, default_id=default)
