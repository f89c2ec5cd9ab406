"""The router's policy files: a broken reference stops start-up naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from upcoach_llm.common.catalog import load_edge_models, load_models
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.router.policy import load_policy


def load() -> None:
    load_policy(load_models(), load_edge_models())


def test_feature_with_unknown_model(config_copy: Path) -> None:
    path = config_copy / "features.yaml"
    path.write_text(path.read_text().replace("server_model: mistral", "server_model: mixtral", 1))
    with pytest.raises(ConfigError, match=r"features.yaml: features.coaching_chat.server_model: "
                                          r"model 'mixtral'"):
        load()


def test_feature_with_unknown_edge_model(config_copy: Path) -> None:
    path = config_copy / "features.yaml"
    path.write_text(path.read_text().replace("edge_model: smollm-360m", "edge_model: tiny", 1))
    with pytest.raises(ConfigError, match=r"features.habit_tips.edge_model: 'tiny'"):
        load()


def test_context_with_unknown_feature(config_copy: Path) -> None:
    path = config_copy / "coaching.yaml"
    path.write_text(path.read_text().replace("feature: goal_setting", "feature: goals"))
    with pytest.raises(ConfigError, match=r"coaching.yaml: contexts.goals.feature: 'goals'"):
        load()


def test_hybrid_limit_must_be_positive(config_copy: Path) -> None:
    path = config_copy / "hybrid.yaml"
    path.write_text(path.read_text().replace("on_device_max_prompt_length: 200",
                                             "on_device_max_prompt_length: -1"))
    with pytest.raises(ConfigError, match=r"hybrid.yaml: on_device_max_prompt_length"):
        load()
