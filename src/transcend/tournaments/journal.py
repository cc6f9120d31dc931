"""The tournament's journal: every finished game appended to ``games.jsonl`` and ``games.pgn``.

``games.jsonl`` is the record: one JSON object a line, written whole, flushed and fsync'ed before the
next game is reported, so an interruption loses at most the games still being played. A last line cut
short by a crash is dropped on reading. ``games.pgn`` is derived from it (each record carries its PGN
text) and is rewritten from the journal when a tournament resumes, so the two always agree.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import TranscendError
from ..files import write_text
from .records import GameEntry


class JournalError(TranscendError):
    """A journal that cannot be read (a damaged line in the middle)."""


def _fsync_write(f, text: str) -> None:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())


class Journal:
    def __init__(self, out_dir: Path) -> None:
        self.records_path = out_dir / "games.jsonl"
        self.pgn_path = out_dir / "games.pgn"
        self._records = None
        self._pgn = None

    def load(self) -> list[GameEntry]:
        """The finished games so far; a torn last line (from a crash mid-write) is cut off the file."""
        if not self.records_path.exists():
            return []
        data = self.records_path.read_bytes()
        good_end = data.rfind(b"\n") + 1
        records = []
        for number, line in enumerate(data[:good_end].splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(GameEntry.from_json(json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                raise JournalError(f"{self.records_path}:{number}: damaged journal line") from None
        if good_end < len(data):
            with open(self.records_path, "r+b") as f:
                f.truncate(good_end)
                os.fsync(f.fileno())
        return records

    def open(self, records: list[GameEntry]) -> None:
        """Start appending; ``games.pgn`` is first rewritten from ``records`` (atomically)."""
        write_text(self.pgn_path, "".join(r.pgn for r in records))
        self._records = open(self.records_path, "a", encoding="utf-8")
        self._pgn = open(self.pgn_path, "a", encoding="utf-8")

    def append(self, record: GameEntry) -> None:
        _fsync_write(self._records, json.dumps(record.to_json(), separators=(",", ":")) + "\n")
        _fsync_write(self._pgn, record.pgn)

    def close(self) -> None:
        for f in (self._records, self._pgn):
            if f is not None:
                f.close()
        self._records = self._pgn = None
