"""The UCI protocol's input and output: lines read as bytes, lines written one at a time (mirrored to
the LogFile option's file), the answer to ``uci``, and the note that marks an emergency random move.

Light on purpose: ``transcend-uci`` answers ``uci`` with this module before the engine is imported.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import BinaryIO

from .. import __version__
from .options import Settings, declarations

ENGINE_NAME = f"transcend {__version__}"
ENGINE_AUTHOR = "the transcend developers"
MAX_LINE_BYTES = 1 << 20
"""Longer input lines are skipped whole (with an ``info string``)."""
RANDOM_MOVE_NOTE = "playing a random legal move"
"""How the ``info string`` of an emergency move (no time for the model) ends; tournaments count them."""


def handshake(settings: Settings) -> list[str]:
    """The answer to ``uci``: the engine's name, its options (current values as defaults), ``uciok``."""
    return [f"id name {ENGINE_NAME}", f"id author {ENGINE_AUTHOR}", *declarations(settings), "uciok"]


def read_line(stream: BinaryIO) -> bytes | None:
    """The next input line as bytes; None at the end of input.

    A line longer than ``MAX_LINE_BYTES`` is read to its end and dropped: what comes back is its first
    ``MAX_LINE_BYTES + 1`` bytes, which the caller recognises by their length.
    """
    raw = stream.readline(MAX_LINE_BYTES + 1)
    if not raw:
        return None
    if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
        rest = raw
        while rest and not rest.endswith(b"\n"):
            rest = stream.readline(MAX_LINE_BYTES)
    return raw


class Output:
    """Writes protocol lines to a binary stream, one at a time, and mirrors both directions to LogFile."""

    def __init__(self, stream: BinaryIO, on_closed: Callable[[], None]) -> None:
        self._stream = stream
        self._on_closed = on_closed
        self._lock = threading.Lock()
        self._log = None

    def send(self, line: str) -> None:
        with self._lock:
            try:
                self._stream.write(line.encode("utf-8", errors="replace") + b"\n")
                self._stream.flush()
            except (OSError, ValueError):  # the GUI closed our stdout: nobody is listening any more
                self._on_closed()
                return
            self._write_log(">", line)

    def log_input(self, line: str) -> None:
        with self._lock:
            self._write_log("<", line)

    def log_note(self, text: str) -> None:
        with self._lock:
            self._write_log("#", text)

    def set_log(self, path: str) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
            if path:
                self._log = open(path, "a", encoding="utf-8", errors="replace")

    def _write_log(self, direction: str, line: str) -> None:
        if self._log is None:
            return
        try:
            self._log.write(f"{datetime.now().isoformat(timespec='milliseconds')} {direction} {line.rstrip()}\n")
            self._log.flush()
        except OSError:
            self._log = None  # a full disk must not stop the engine

    def close(self) -> None:
        self.set_log("")
