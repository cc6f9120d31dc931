"""``transcend-uci``: the model as a UCI engine that GUIs, tournament runners and bots can rely on.

This module is the entry point and the protocol's plumbing: the command line, the output (one line at a
time, mirrored to LogFile) and input read as bytes. It imports nothing heavy, so that the answer to
``uci`` (``handshake``) goes out before numpy, python-chess, onnxruntime and the engine itself
(``uci_engine``) are even imported; the model then loads in the background. The process never imports
torch.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import BinaryIO

from .. import __version__
from .uci_options import Settings, add_flags, declarations, settings_from_args

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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, as the project's errors are; --help shows usage
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="transcend-uci",
        description="The transcend model as a UCI chess engine: it speaks UCI on stdin and stdout. Every "
                    "flag sets the UCI option of the same meaning (a GUI can still change it with setoption). "
                    "With no arguments it plays with the model shipped in the package.",
    )
    add_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    settings = settings_from_args(build_parser().parse_args(argv))

    def closed() -> None:  # stdout is gone: leave without a word (and without a BrokenPipe message)
        os._exit(0)

    output = Output(sys.stdout.buffer, closed)
    try:
        output.set_log(settings.log_file)
    except OSError as exc:
        print(f"transcend-uci: error: --log-file: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    stdin = sys.stdin.buffer
    try:
        first = read_line(stdin)
        quick = first is not None and first.strip() == b"uci"
        if quick:  # the usual first command: answered before the engine is even imported
            output.log_input("uci")
            for line in handshake(settings):
                output.send(line)
        from .uci_engine import UciEngine

        engine = UciEngine(settings, output)
        if quick:
            engine.start_loading()
        engine.run(stdin, first=None if quick else first)
    except KeyboardInterrupt:
        pass
    output.close()
    os._exit(0)  # a model still loading or running on a daemon thread must not delay or crash the exit


if __name__ == "__main__":
    main()
