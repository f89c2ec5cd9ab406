"""Shared fixtures: free ports, the repository's config folder, and real stacks of processes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from upcoach_llm.dev.ports import free_port
from upcoach_llm.dev.stack import Stack, default_specs

pytest_plugins = ["tests.support.config_copy"]


@pytest.fixture(scope="module")
def stack_factory() -> Iterator:
    """Starts real service processes on free ports: ``stack_factory(["generation"], env={...})``.

    Every stack started through it is stopped at the end of the test module, so stacks of
    different modules never compete for the CPU; logs go to a temp folder
    whose path is printed when a process fails to start.
    """
    stacks: list[Stack] = []

    def start(names: list[str] | None = None, env: dict[str, str] | None = None,
              timeout: float = 180.0) -> Stack:
        specs = default_specs({s.name: free_port() for s in default_specs()})
        log_dir = tempfile.mkdtemp(prefix="upcoach-stack-")
        stack = Stack(specs, env={"LOG_LEVEL": "info", "GRPC_GRACE_S": "5", **(env or {})},
                      log_dir=log_dir)
        stacks.append(stack)
        stack.start(names)
        try:
            stack.wait_ready(timeout)
        except (RuntimeError, TimeoutError) as exc:
            logs = {n: open(os.path.join(log_dir, f"{n}.log")).read()[-3000:]  # noqa: SIM115
                    for n in stack.processes}
            stack.stop()
            details = "\n".join(f"--- {n}\n{t}" for n, t in logs.items())
            raise RuntimeError(f"{exc}\n{details}") from exc
        return stack

    yield start
    for stack in stacks:
        stack.stop()
