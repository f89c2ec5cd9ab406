"""How the ONNX embedding engine groups texts into batches: by length, with bounded padding."""

from __future__ import annotations

import random

from upcoach_llm.engines.onnx_embedding_engine import PAD_SLACK, plan_batches


def test_equal_lengths_fill_batches_up_to_the_batch_size() -> None:
    assert plan_batches([7] * 10, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_short_and_long_texts_go_into_separate_batches() -> None:
    assert plan_batches([5, 40, 5, 6, 41, 5], 64) == [[0, 2, 5, 3], [1, 4]]


def test_every_row_appears_once_and_padding_stays_bounded() -> None:
    generator = random.Random(7)
    lengths = [generator.randint(3, 256) for _ in range(500)]
    plan = plan_batches(lengths, 32)
    assert sorted(row for batch in plan for row in batch) == list(range(500))
    for batch in plan:
        assert len(batch) <= 32
        padded = len(batch) * max(lengths[row] for row in batch)
        assert len(batch) == 1 or padded <= PAD_SLACK * sum(lengths[row] for row in batch)


def test_no_texts_means_no_batches() -> None:
    assert plan_batches([], 8) == []


def test_a_high_slack_runs_a_few_short_texts_of_different_lengths_together() -> None:
    assert plan_batches([12, 5, 9], 64) == [[1], [2, 0]]
    assert plan_batches([12, 5, 9], 64, slack=4.0) == [[1, 2, 0]]
