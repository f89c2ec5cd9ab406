"""A writable copy of config/ that the loaders read instead of the real one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from upcoach_llm.common.config import PACKAGED_CONFIG_DIR


@pytest.fixture
def config_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Copies config/ to a temp folder and points UPCOACH_CONFIG_DIR at it."""
    target = tmp_path / "config"
    shutil.copytree(PACKAGED_CONFIG_DIR, target)
    monkeypatch.setenv("UPCOACH_CONFIG_DIR", str(target))
    return target
