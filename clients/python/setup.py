"""Build hook of the upcoach-client distribution: generates ``upcoach_client/api`` first.

The stubs and the shared modules come from protos/ (a link to the repository's protos/) through
protos/python_stubs.py, as for the server; without the Connect stubs, which only the gateway
serves. They are written into the source tree (git ignores them), so a regular build copies them
and an editable install imports them in place.
"""

from __future__ import annotations

import runpy
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
# Before setup(): egg_info already needs the package folder. Every build step regenerates it, so
# it always matches protos/.
generate = runpy.run_path(str(HERE / "protos" / "python_stubs.py"))["generate"]
generate(HERE / "upcoach_client" / "api", proto_root=HERE / "protos")
setup()
