"""The Dockerfile: multi-stage, non-root, stubs generated in the build, nothing missing.

Docker's engine cannot run here, so these are the checks that need none: the stages, the user,
that every path it copies exists and survives .dockerignore, and that what the compose commands
run is inside the image.
"""

from __future__ import annotations

import fnmatch
import re

from services.common.config import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
IGNORED = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
           if line.strip() and not line.startswith("#")]


def instructions(name: str) -> list[str]:
    return re.findall(rf"^{name}\s+(.+)$", DOCKERFILE, flags=re.MULTILINE)


def ignored(path: str) -> bool:
    top = path.rstrip("/").split("/")[0]
    return any(fnmatch.fnmatch(top, pattern) or fnmatch.fnmatch(path.rstrip("/"), pattern)
               for pattern in IGNORED)


def test_multi_stage_with_a_slim_runtime() -> None:
    stages = instructions("FROM")
    assert len(stages) >= 2
    assert stages[0].endswith("AS build") and stages[-1].endswith("AS runtime")
    assert all("slim" in stage for stage in stages)


def test_runs_as_a_non_root_user() -> None:
    users = instructions("USER")
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert "useradd --system --uid 10001" in DOCKERFILE
    last_stage = DOCKERFILE.rsplit("FROM ", 1)[1]
    assert last_stage.index("USER ") > last_stage.rindex("COPY ")


def test_stubs_are_generated_in_the_build_with_the_make_proto_script() -> None:
    assert "RUN scripts/generate-stubs.sh /opt/venv/bin/python build/stubs" in DOCKERFILE
    assert "scripts/generate-stubs.sh" in (REPO_ROOT / "Makefile").read_text()
    assert "COPY --from=build /app/build/stubs build/stubs" in DOCKERFILE
    assert "PYTHONPATH=/app:/app/build/stubs" in DOCKERFILE


def test_every_copied_path_exists_and_reaches_the_build_context() -> None:
    for line in instructions("COPY"):
        if line.startswith("--from="):
            continue
        *sources, _target = line.split()
        for source in sources:
            assert (REPO_ROOT / source).exists(), source
            assert not ignored(source), f"{source} is excluded by .dockerignore"


def test_the_image_holds_what_compose_runs() -> None:
    copied = {src.rstrip("/") for line in instructions("COPY") if not line.startswith("--from=")
              for src in line.split()[:-1]}
    for needed in ("services", "gateway", "config", "scripts"):
        assert needed in copied, needed


def test_secrets_and_weights_stay_out_of_the_context() -> None:
    for path in (".env", ".env.production", ".venv", "node_modules", "build", ".git", "x.gguf"):
        assert ignored(path), path
