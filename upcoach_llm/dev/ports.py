"""Free TCP ports for the processes the launcher, the tests and the benches start."""

from __future__ import annotations

import random
import socket

# Ports handed to processes come from below Linux's ephemeral range (32768-60999), so an
# outgoing connection cannot take one between the pick and the process binding it.
_PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, never handed out before by this process."""
    for _ in range(500):
        port = random.randrange(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORT_RANGE}")
