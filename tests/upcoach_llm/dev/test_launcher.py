"""upcoach_llm/dev/launcher.py: the internal tokens file, and starting without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from upcoach_llm.dev.launcher import write_tokens

TOKENS = {"INTERNAL_TOKEN": "internal-0123456789abcdef", "INTERNAL_ADMIN_TOKEN": "admin-0123456789"}


def test_tokens_are_written_for_this_user_only(tmp_path: Path) -> None:
    path = tmp_path / "build" / "run" / "internal-tokens.env"
    assert write_tokens(TOKENS, path) == str(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert path.read_text() == ("INTERNAL_TOKEN=internal-0123456789abcdef\n"
                                "INTERNAL_ADMIN_TOKEN=admin-0123456789\n")


def test_an_unwritable_directory_is_a_warning_not_a_crash(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    """The image runs upcoach-stack as a user who cannot write to /app: the stack must start."""
    (tmp_path / "build").write_text("a file where the directory would go")
    where = write_tokens(TOKENS, tmp_path / "build" / "run" / "internal-tokens.env")
    assert "not written" in where
    warning = capsys.readouterr().err
    assert "cannot write the internal tokens" in warning
    assert TOKENS["INTERNAL_TOKEN"] not in warning
