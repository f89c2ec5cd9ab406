"""Build hook of the upcoach-llm distribution: generates ``upcoach_llm/api`` before the build.

The stubs and shared modules (protos/python_stubs.py) are written into the source tree, which
git ignores, so a regular build copies them like any other module and an editable install
(``pip install -e .``) imports them in place. Everything else is declared in pyproject.toml.
"""

from __future__ import annotations

import runpy
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
# Before setup(): egg_info already needs the package folder. Every build step regenerates it, so
# it always matches protos/.
generate = runpy.run_path(str(HERE / "protos" / "python_stubs.py"))["generate"]
generate(HERE / "upcoach_llm" / "api", connect=True, proto_root=HERE / "protos")
setup()
