"""The semantic cache on its labelled set (semantic_set.yaml) with the real MiniLM engine.

Each pair is scored as the cache scores it: the subjects embedded (semantic_text), the first
text's vector quantised as stored, the second looked up, a hit when the similarity reaches the
feature's threshold and the guard lets it through. Goals (issue 12): hit rate >= 70% on
paraphrases, wrong hits <= 2% on contrasts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import yaml

from upcoach_llm.engines.onnx_embedding_engine import (
    MODEL_NAME,
    OnnxEmbeddingEngine,
    OnnxEmbeddingSettings,
)
from upcoach_llm.engines.packaged_models import MINILM_ONNX, MINILM_TOKENIZER
from upcoach_llm.gateway.store.semantic_guard import Polarity, agree
from upcoach_llm.gateway.store.semantic_index import Entry, unit
from upcoach_llm.gateway.store.semantic_policy import SemanticPolicy, load_semantic_policy
from upcoach_llm.gateway.store.semantic_text import subject

SET = yaml.safe_load((Path(__file__).parent / "semantic_set.yaml").read_text())
Pair = tuple[str, str, str]  # feature, stored, looked up


def pairs(kind: str) -> list[Pair]:
    return [(feature, *(t.strip() for t in line.split(" | ")))
            for feature, lines in SET[kind].items() for line in lines]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine() -> AsyncIterator[OnnxEmbeddingEngine]:
    engine = OnnxEmbeddingEngine(OnnxEmbeddingSettings(
        model_path=MINILM_ONNX.path(), tokenizer_path=MINILM_TOKENIZER.path(),
        batch_size=64, intra_op_threads=1))
    await engine.load()
    yield engine
    await engine.close()


async def scored(engine: OnnxEmbeddingEngine, policy: SemanticPolicy,
                 items: list[Pair]) -> list[tuple[float, bool, bool]]:
    """(similarity, guard agrees, hit) per pair, with the stored side quantised as in Redis."""
    texts = [subject(t) for _, a, b in items for t in (a, b)]
    vectors = np.asarray((await engine.embed(MODEL_NAME, texts)).vectors, dtype=np.float32)
    out = []
    for row, (feature, stored, asked) in enumerate(items):
        entry = Entry.unpack(Entry(0.0, b"0" * 16, vectors[2 * row], stored).pack())
        similarity = float(unit(entry.vector.astype(np.float32)) @ vectors[2 * row + 1])
        agrees = agree(Polarity.of(stored), Polarity.of(asked))
        threshold = policy.threshold(feature)
        assert threshold is not None, f"{feature} is not cacheable in semantic_cache.yaml"
        out.append((similarity, agrees, similarity >= threshold and agrees))
    return out


def test_the_set_is_big_enough() -> None:
    policy = load_semantic_policy()
    assert len(pairs("paraphrases")) >= 40
    assert len(pairs("contrasts")) >= 40
    assert {f for f, _, _ in pairs("paraphrases") + pairs("contrasts")} == set(
        policy.file.features)


@pytest.mark.asyncio(loop_scope="module")
async def test_paraphrases_hit_and_contrasts_do_not(engine: OnnxEmbeddingEngine) -> None:
    policy = load_semantic_policy()
    paraphrases, contrasts = pairs("paraphrases"), pairs("contrasts")
    para = await scored(engine, policy, paraphrases)
    cont = await scored(engine, policy, contrasts)
    hit_rate = sum(hit for _, _, hit in para) / len(para)
    wrong = sum(hit for _, _, hit in cont) / len(cont)
    by_similarity = sum(s >= policy.threshold(f) for (f, _, _), (s, _, _)
                        in zip(contrasts, cont, strict=True)) / len(cont)
    print(f"\nsemantic cache: paraphrase hit rate {hit_rate:.1%} ({len(para)} pairs), "
          f"wrong hits on contrasts {wrong:.1%} ({len(cont)} pairs; "
          f"{by_similarity:.1%} without the guard)")
    for (_, a, b), (s, agrees, hit) in zip(paraphrases, para, strict=True):
        if not hit:
            print(f"  paraphrase miss  {s:.3f} guard={agrees}  {a!r} / {b!r}")
    for (_, a, b), (s, _, hit) in zip(contrasts, cont, strict=True):
        if hit:
            print(f"  contrast HIT     {s:.3f}  {a!r} / {b!r}")
    assert hit_rate >= 0.70
    assert wrong <= 0.02
