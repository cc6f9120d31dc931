"""Files written whole or not at all.

Every output a later step reads (a dataset's ``meta.json``, a run's checkpoint and weights, an ONNX
export, a tournament's configuration and results) is written to a temporary name in the same
directory, flushed and fsync'ed, then renamed over the old file (a rename is atomic), and the
directory is fsync'ed: a reader sees the old file or the new one, never a torn one, whenever the
writer is killed. Append-only logs are the exception: their reader skips a line torn by a kill.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Have ``write`` fill a temporary file, make it durable, and rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def write_text(path: Path, text: str) -> None:
    """``atomic_write`` of a UTF-8 text."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_jsonl(path: Path) -> list:
    """The JSON values of an append-only JSON-lines log, one a line; lines that do not parse (torn by a
    kill mid-write) are skipped, and a missing file is an empty log."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some systems cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
