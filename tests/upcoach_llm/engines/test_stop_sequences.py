"""StopScanner: text before a stop sequence goes out, nothing from the stop sequence on does."""

from __future__ import annotations

from upcoach_llm.engines.stop_sequences import StopScanner


def feed(scanner: StopScanner, pieces: list[str]) -> tuple[str, bool]:
    out = []
    for piece in pieces:
        text, stopped = scanner.push(piece)
        out.append(text)
        if stopped:
            return "".join(out), True
    return "".join(out) + scanner.flush(), False


def test_no_stop_sequences_passes_text_through_at_once() -> None:
    scanner = StopScanner(())
    assert scanner.push("Hello") == ("Hello", False)
    assert scanner.flush() == ""


def test_stop_inside_one_piece_cuts_before_it() -> None:
    assert feed(StopScanner(["END"]), ["one two END three"]) == ("one two ", True)


def test_stop_split_across_pieces_is_held_back_then_dropped() -> None:
    scanner = StopScanner(["\nUser:"])
    assert scanner.push("Sure.\nUs") == ("Sure.", False)
    assert scanner.push("er: hi") == ("", True)


def test_held_back_prefix_is_released_when_it_turns_out_not_to_be_a_stop() -> None:
    scanner = StopScanner(["STOP"])
    assert scanner.push("a ST") == ("a ", False)
    assert scanner.push("ART") == ("START", False)


def test_held_back_tail_is_flushed_at_the_end() -> None:
    assert feed(StopScanner(["STOP"]), ["run ", "ST"]) == ("run ST", False)


def test_earliest_of_several_stops_wins() -> None:
    assert feed(StopScanner(["b", "xyz"]), ["a xyz b"]) == ("a ", True)
