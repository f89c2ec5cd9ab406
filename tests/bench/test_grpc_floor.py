"""The bare gRPC hop of the peer benchmark (bench/grpc_floor.py): real processes pass the paced
messages asked for, and the figure is both ends' CPU over the text messages read."""

from __future__ import annotations

import pytest

from bench.grpc_floor import Floor, measure


def test_a_run_passes_whole_paced_replies_and_counts_both_ends_cpu() -> None:
    floor = measure(clients=2, chunks=3, delay_ms=1.0, duration=1.0)
    assert floor.calls >= 2  # each caller finished at least one whole reply
    assert floor.messages == floor.calls * 3  # text messages only: not the finish message
    assert floor.server_cpu_s > 0 and floor.client_cpu_s > 0  # each end measured, by its pid


def test_the_figure_is_both_ends_cpu_per_text_message() -> None:
    assert Floor(0, 0, 0.1, 0.1).cpu_ms_per_message is None
    assert Floor(4, 2, 0.001, 0.003).cpu_ms_per_message == pytest.approx(1.0)
