"""The Dockerfile: multi-stage, non-root, the package installed with pip, nothing missing.

Docker's engine cannot run here, so these are the checks that need none: the stages, the user,
that every path it copies exists and survives .dockerignore, and that what the compose commands
run is inside the image.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib

from tests.support.paths import REPO_ROOT

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


def test_the_package_is_installed_with_pip_and_its_build_hook() -> None:
    build_stage = DOCKERFILE.split("AS runtime")[0]
    assert "RUN /opt/venv/bin/pip install .\n" in build_stage
    for needed in ("pyproject.toml", "setup.py", "protos/", "upcoach_llm/"):
        assert any(needed in line.split() for line in instructions("COPY")), needed
    assert "PYTHONPATH" not in DOCKERFILE
    assert "COPY --from=build /opt/venv /opt/venv" in DOCKERFILE


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
    for needed in ("upcoach_llm", "scripts"):
        assert needed in copied, needed
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    run = set(re.findall(r'\["(?:CMD", ")?(upcoach-[\w-]+)"', compose))
    assert len(run) == 6 and run <= set(scripts), run - set(scripts)


def test_secrets_and_weights_stay_out_of_the_context() -> None:
    for path in (".env", ".env.production", ".venv", "node_modules", "build", ".git", "x.gguf"):
        assert ignored(path), path
