"""Builds the ``api`` package of a distribution: the upcoach.llm.v1 stubs and the shared modules.

    python protos/python_stubs.py OUT_DIR [--connect]

The server distribution builds ``upcoach_llm/api`` (with the Connect stubs the gateway serves
grpc-web from), the client distribution ``upcoach_client/api``. Each gets the protobuf and gRPC
stubs of protos/upcoach/llm/v1 and a copy of the modules in protos/python/: what both sides of the
API must agree on (the enums' names, the services' ports and variables, the status details),
written once there. protoc writes ``from upcoach.llm.v1 import x_pb2``; those imports are made
relative, so each copy is a private package of its distribution and the two never share a file
when installed side by side (protobuf registers the identical descriptors once). The build hooks
of both ``setup.py`` files and ``make proto`` call ``generate``; nothing it writes is committed.
Needs grpcio-tools, and protoc-gen-connectrpc on PATH or next to the interpreter for ``--connect``.
"""

from __future__ import annotations

import argparse
import importlib.resources
import re
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_PATH = Path("upcoach", "llm", "v1")
SHARED_MODULES = PROTO_ROOT / "python"
_ABSOLUTE_IMPORT = re.compile(r"^from upcoach\.llm\.v1 import ", re.MULTILINE)


def _connect_plugin() -> str:
    found = shutil.which("protoc-gen-connectrpc")
    beside = Path(sysconfig.get_path("scripts"), "protoc-gen-connectrpc")
    if found:
        return found
    if beside.is_file():
        return str(beside)
    raise RuntimeError("protoc-gen-connectrpc not found: pip install protoc-gen-connectrpc")


def generate(out_dir: Path, *, connect: bool = False, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Writes the package into out_dir, replacing what was there; returns the files written."""
    from grpc_tools import protoc

    protos = sorted(str(p) for p in (proto_root / PACKAGE_PATH).glob("*.proto"))
    if not protos:
        raise RuntimeError(f"no .proto files under {proto_root / PACKAGE_PATH}")
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = ["protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={tmp}",
                f"--pyi_out={tmp}", f"--grpc_python_out={tmp}"]
        if connect:
            args += [f"--plugin=protoc-gen-connectrpc={_connect_plugin()}",
                     f"--connectrpc_out={tmp}", "--connectrpc_opt=protobuf=google"]
        if protoc.main([*args, *protos]) != 0:
            raise RuntimeError(f"protoc failed on {proto_root / PACKAGE_PATH}")
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        written = []
        for source in sorted(Path(tmp, PACKAGE_PATH).iterdir()):
            target = out_dir / source.name
            target.write_text(_ABSOLUTE_IMPORT.sub("from . import ", source.read_text()))
            written.append(target)
    for module in sorted(SHARED_MODULES.glob("*.py")):
        shutil.copyfile(module, out_dir / module.name)
        written.append(out_dir / module.name)
    init = out_dir / "__init__.py"
    init.write_text('"""The upcoach.llm.v1 API: generated from protos/ when the package is built. '
                    'DO NOT EDIT."""\n')
    return [init, *written]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="the package folder to write the stubs into")
    parser.add_argument("--connect", action="store_true", help="also the Connect (grpc-web) stubs")
    args = parser.parse_args(argv)
    files = generate(args.out_dir, connect=args.connect)
    print(f"wrote {len(files)} files into {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
