"""The bare gRPC hop of the peer benchmark (bench/grpc_floor.py): real processes pass the paced
messages asked for, and the figure is both ends' CPU over the text messages read."""

from __future__ import annotations

import pytest

from bench.grpc_floor import Floor, measure


def test_a_run_passes_whole_paced_replies_and_counts_both_ends_cpu() -> None:
    floor = measure(clients=2, chunks=3, delay_ms=1.0, duration=1.0)
    assert floor.messages >= 2 * 3  # each caller finished at least one whole reply
    assert floor.messages % 3 == 0  # the finish message is not counted as a text message
    assert floor.server_cpu_s + floor.client_cpu_s > 0
    assert floor.cpu_ms_per_message == pytest.approx(
        (floor.server_cpu_s + floor.client_cpu_s) * 1000 / floor.messages)


def test_no_messages_gives_no_figure() -> None:
    assert Floor(0, 0.1, 0.1).cpu_ms_per_message is None
    assert Floor(4, 0.001, 0.003).cpu_ms_per_message == pytest.approx(1.0)
