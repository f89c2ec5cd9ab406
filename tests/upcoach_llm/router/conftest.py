"""The router's policy as shipped in config/."""

from __future__ import annotations

import pytest

from upcoach_llm.common.catalog import load_edge_models, load_models
from upcoach_llm.router.policy import RouterPolicy, load_policy


@pytest.fixture(scope="session")
def policy() -> RouterPolicy:
    return load_policy(load_models(), load_edge_models())
