"""Stop sequences over streamed text: nothing at or after a stop sequence is ever emitted.

Text that could be the start of a stop sequence is held back until the next piece shows
whether it is one; the rest goes out at once.
"""

from __future__ import annotations


class StopScanner:
    """Feeds generated text through; reports where the first stop sequence begins."""

    def __init__(self, stops: tuple[str, ...] | list[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def push(self, text: str) -> tuple[str, bool]:
        """Returns the text safe to emit now, and whether a stop sequence was reached."""
        if not self._stops:
            return text, False
        buffer = self._pending + text
        found = [index for index in (buffer.find(s) for s in self._stops) if index >= 0]
        if found:
            self._pending = ""
            return buffer[:min(found)], True
        hold = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), hold, -1):
                if buffer.endswith(stop[:size]):
                    hold = size
                    break
        self._pending = buffer[len(buffer) - hold:] if hold else ""
        return buffer[:len(buffer) - hold], False

    def flush(self) -> str:
        """The held-back text, once generation has ended without a stop sequence."""
        pending, self._pending = self._pending, ""
        return pending
