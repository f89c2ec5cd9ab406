#!/usr/bin/env bash
# Generates the protobuf, gRPC and Connect stubs from protos/ into one package folder.
#
#   scripts/generate-stubs.sh PYTHON [OUT]     # OUT defaults to build/stubs
#
# PYTHON is the interpreter of a virtualenv holding grpcio-tools and protoc-gen-connectrpc (the
# plugin is taken from the same bin folder). Used by `make proto` and by the Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${1:?usage: scripts/generate-stubs.sh PYTHON [OUT]}
out=${2:-build/stubs}
plugin="$(dirname "$python")/protoc-gen-connectrpc"
[[ -x $plugin ]] || { echo "error: $plugin not found: install protoc-gen-connectrpc next to $python" >&2; exit 1; }

rm -rf "$out" && mkdir -p "$out"
"$python" -m grpc_tools.protoc -I protos \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-connectrpc="$plugin" \
  --connectrpc_out="$out" --connectrpc_opt=protobuf=google \
  protos/upcoach/llm/v1/*.proto
