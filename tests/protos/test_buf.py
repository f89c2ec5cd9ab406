"""The API contract: buf lint (STANDARD) is clean and buf breaking (FILE) finds no break against
any version of protos/ in the history.

buf is the real binary from npm (`@bufbuild/buf`, installed by `make test`); it runs offline.
Each check is also shown to fail on a proto that breaks its rule, so a green run means something.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

BUF = REPO_ROOT / "node_modules" / ".bin" / "buf"
pytestmark = pytest.mark.skipif(not BUF.exists(), reason="buf not installed: run make test")


def buf(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUF), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def workspace_copy(tmp_path: Path) -> Path:
    """buf.yaml and protos/ copied to a scratch folder, to be broken on purpose."""
    shutil.copy(REPO_ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(REPO_ROOT / "protos", tmp_path / "protos")
    return tmp_path


def test_lint_is_clean() -> None:
    result = buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_catches_an_enum_without_an_unspecified_zero(tmp_path: Path) -> None:
    work = workspace_copy(tmp_path)
    common = work / "protos/upcoach/llm/v1/common.proto"
    common.write_text(common.read_text().replace("ROLE_UNSPECIFIED = 0;", "ROLE_NONE = 0;"))
    result = buf("lint", cwd=work)
    assert result.returncode != 0
    assert "ROLE_NONE" in result.stdout


def published_versions() -> list[str]:
    """Every commit that changed protos/, newest first: the contract as each one left it."""
    log = subprocess.run(["git", "log", "--format=%H", "--", "protos"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=False)
    return log.stdout.split() if log.returncode == 0 else []


def test_no_breaking_change_against_any_earlier_version() -> None:
    """The working tree against every version of protos/ in the history (on a clean checkout of
    main, comparing with main itself would compare the protos with themselves)."""
    versions = published_versions()
    if not versions:
        pytest.skip("not a git checkout with history")
    broken = {}
    for commit in versions:
        result = buf("breaking", "--against", f".git#ref={commit},subdir=protos")
        if result.returncode != 0:
            broken[commit[:10]] = result.stdout + result.stderr
    assert not broken, broken


def test_breaking_catches_a_removed_field(tmp_path: Path) -> None:
    work = workspace_copy(tmp_path)
    generation = work / "protos/upcoach/llm/v1/generation.proto"
    text = generation.read_text()
    generation.write_text(text.replace("  // Set on the last chunk only.\n  Usage usage = 3;\n", "",
                                       1))
    assert generation.read_text() != text
    result = buf("breaking", "--against", str(REPO_ROOT / "protos"), cwd=work)
    assert result.returncode != 0
    assert "usage" in result.stdout
