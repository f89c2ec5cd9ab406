"""What every benchmark shares: the stack's processes on free ports, started and ready.

    stack = start_stack(["generation", "router"], {"GENERATION_PARALLEL": "2"}, label="gen")

Services log at ``warn`` unless ``env`` says otherwise; logs go to a fresh temp folder; a stack
that fails to become ready is stopped before the error propagates.
"""

from __future__ import annotations

import tempfile

from upcoach_llm.dev.ports import free_port
from upcoach_llm.dev.stack import Stack, default_specs


def start_stack(names: list[str] | None = None, env: dict[str, str] | None = None, *,
                label: str = "bench", timeout: float = 180.0) -> Stack:
    """Starts the named services (default: all) on free ports and waits until they are ready."""
    specs = default_specs({spec.name: free_port() for spec in default_specs()})
    stack = Stack(specs, env={"LOG_LEVEL": "warn", **(env or {})},
                  log_dir=tempfile.mkdtemp(prefix=f"bench-{label}-"))
    stack.start(names)
    try:
        stack.wait_ready(timeout)
    except BaseException:
        stack.stop()
        raise
    return stack
