"""Where the tests find the checkout's own files (README, compose file, scripts, config)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
