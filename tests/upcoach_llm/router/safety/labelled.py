"""The labelled sets of this folder (crisis_set.yaml, crisis_holdout.yaml), read."""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).parent


def labelled(name: str) -> dict[str, list[list[str]]]:
    """A labelled set: per label its conversations, each a list of user messages."""
    data = yaml.safe_load((HERE / name).read_text())
    return {label: [item if isinstance(item, list) else [item] for item in items]
            for label, items in data.items()}
