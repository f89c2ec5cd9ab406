"""The router's policy files: features.yaml, coaching.yaml (typed in common/features.py, which the
gateway's semantic cache reads too) and hybrid.yaml, typed and cross-checked.

Every model, edge model and feature a file names must exist, so a typo stops start-up with the
file and key named.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from upcoach_llm.common.catalog import EdgeModelsFile, ModelsFile
from upcoach_llm.common.config import config_dir, load_config_file
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.features import CoachingFile, FeaturesFile


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimpleQuery(_Strict):
    """The rules of the guide's _isSimpleQuery."""

    max_words: int = Field(gt=0)
    max_sentences: int = Field(gt=0)
    complex_markers: list[str] = []


class HybridFile(_Strict):
    """config/hybrid.yaml."""

    on_device_max_prompt_length: int = Field(gt=0)
    simple_query: SimpleQuery


@dataclass(frozen=True)
class RouterPolicy:
    """Everything the router decides with, loaded and cross-checked once."""

    catalog: ModelsFile
    features: FeaturesFile
    coaching: CoachingFile
    hybrid: HybridFile


def load_policy(catalog: ModelsFile, edge: EdgeModelsFile) -> RouterPolicy:
    """Loads the three policy files and checks their references against the catalogs."""
    features = load_config_file(FeaturesFile, "features.yaml")
    coaching = load_config_file(CoachingFile, "coaching.yaml")
    hybrid = load_config_file(HybridFile, "hybrid.yaml")
    where = config_dir()
    for name, feature in features.features.items():
        if catalog.get(feature.server_model) is None:
            raise ConfigError(f"{where / 'features.yaml'}: features.{name}.server_model: "
                              f"model {feature.server_model!r} is not in models.yaml")
        if feature.edge_model is not None and edge.get(feature.edge_model) is None:
            raise ConfigError(f"{where / 'features.yaml'}: features.{name}.edge_model: "
                              f"{feature.edge_model!r} is not in edge_models.yaml")
    for name, context in coaching.contexts.items():
        if context.feature not in features.features:
            raise ConfigError(f"{where / 'coaching.yaml'}: contexts.{name}.feature: "
                              f"{context.feature!r} is not in features.yaml")
    if coaching.default_context not in coaching.contexts:
        raise ConfigError(f"{where / 'coaching.yaml'}: default_context: "
                          f"{coaching.default_context!r} is not in contexts")
    return RouterPolicy(catalog=catalog, features=features, coaching=coaching, hybrid=hybrid)
