"""PGN files (plain or zstd-compressed) to the paper's transcripts, packed as uint8 token ids.

The reader does not replay games with python-chess: it cleans the movetext textually (comments, NAGs,
move numbers, results removed) and rebuilds the transcript from the SAN tokens, which is what makes
it fast. Every kept game is appended to ``train.bin`` or ``val.bin`` by a hash of its transcript.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .transcript import VOCAB, encode, transcript_from_sans

_HEADER = re.compile(r'^\[(\w+)\s+"(.*)"\]\s*$')
_COMMENT = re.compile(r"\{[^}]*\}")
_LINE_COMMENT = re.compile(r";[^\n]*")
_NAG = re.compile(r"\$\d+")
_MOVE_NUMBER = re.compile(r"\d+\.(?:\.\.)?")
_SUFFIX = re.compile(r"[!?]+")
_RESULTS = frozenset({"1-0", "0-1", "1/2-1/2", "*"})
_SAN = re.compile(r"^(?:O-O(?:-O)?|[KQRBN][a-h]?[1-8]?x?[a-h][1-8]|[a-h](?:x[a-h])?[1-8](?:=[QRBN])?)[+#]?$")


class DataError(ValueError):
    """Input that cannot be read at all (missing file, no games)."""


@dataclass
class Game:
    headers: dict[str, str]
    movetext: str


@dataclass
class PrepareStats:
    games_read: int = 0
    games_kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    symbols_train: int = 0
    symbols_val: int = 0


def open_pgn(path: str | Path) -> BinaryIO:
    """Open a PGN source as a binary stream: a path to ``.pgn`` or ``.pgn.zst``, or ``-`` for stdin."""
    if str(path) == "-":
        return sys.stdin.buffer
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    raw = open(path, "rb")
    if path.suffix == ".zst":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
    return raw


def iter_games(stream: BinaryIO) -> Iterator[Game]:
    """Split a PGN byte stream into games (header tags and raw movetext); tolerant of bad bytes."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline=None)
    headers: dict[str, str] = {}
    moves: list[str] = []
    for line in text:
        line = line.strip()
        if line.startswith("["):
            if moves:
                yield Game(headers, " ".join(moves))
                headers, moves = {}, []
            match = _HEADER.match(line)
            if match:
                headers[match.group(1)] = match.group(2)
        elif line:
            moves.append(line)
    if moves or headers:
        yield Game(headers, " ".join(moves))


def sans_from_movetext(movetext: str) -> list[str]:
    """SAN tokens of a PGN movetext (comments, variations, NAGs, numbers, results removed)."""
    text = _COMMENT.sub(" ", movetext)
    text = _strip_variations(text)
    text = _LINE_COMMENT.sub(" ", text)
    text = _NAG.sub(" ", text)
    text = _MOVE_NUMBER.sub(" ", text)
    text = _SUFFIX.sub("", text)
    return [tok for tok in text.split() if tok not in _RESULTS]


def _strip_variations(text: str) -> str:
    if "(" not in text:
        return text
    out, depth = [], 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _elo(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class GameFilter:
    max_elo: int | None = None
    min_elo: int | None = None
    min_moves: int = 1

    def reject_reason(self, game: Game) -> str | None:
        """Why a game is not kept (the paper's rule: both players within the rating bounds)."""
        h = game.headers
        if h.get("Variant", "Standard").lower() not in ("standard", "chess", ""):
            return "variant"
        if "FEN" in h or h.get("SetUp") == "1":
            return "custom_start"
        if self.max_elo is not None or self.min_elo is not None:
            elos = (_elo(h.get("WhiteElo")), _elo(h.get("BlackElo")))
            if None in elos:
                return "missing_rating"
            if self.max_elo is not None and max(elos) > self.max_elo:
                return "rating"
            if self.min_elo is not None and min(elos) < self.min_elo:
                return "rating"
        return None


def transcript_of(game: Game, game_filter: GameFilter) -> tuple[str | None, str | None]:
    """(transcript, None) for a kept game, (None, reason) for a rejected one."""
    reason = game_filter.reject_reason(game)
    if reason:
        return None, reason
    sans = sans_from_movetext(game.movetext)
    if not sans:
        return None, "no_moves"
    if len(sans) < game_filter.min_moves:
        return None, "too_short"
    if not all(_SAN.match(san) for san in sans):
        return None, "parse_error"
    return transcript_from_sans(sans), None


def is_validation(transcript: str, val_fraction: float) -> bool:
    """Deterministic split by game: the same game always lands on the same side."""
    digest = hashlib.blake2b(transcript.encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < val_fraction


def prepare(
    inputs: list[str],
    out_dir: Path,
    game_filter: GameFilter,
    val_fraction: float = 0.01,
    progress: bool = True,
) -> PrepareStats:
    """Stream ``inputs`` into ``out_dir/{train,val}.bin`` and ``meta.json``."""
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    stats = PrepareStats()
    streams = [open_pgn(p) for p in inputs]  # fail on a missing file before writing anything
    with open(out_dir / "train.bin.tmp", "wb") as train, open(out_dir / "val.bin.tmp", "wb") as val:
        bar = tqdm(unit=" games", disable=None if progress else True, desc="prepare")
        for stream in streams:
            with stream:
                for game in iter_games(stream):
                    stats.games_read += 1
                    transcript, reason = transcript_of(game, game_filter)
                    if transcript is None:
                        stats.rejected[reason] += 1
                    else:
                        ids = encode(transcript)
                        if is_validation(transcript, val_fraction):
                            val.write(ids.tobytes())
                            stats.symbols_val += ids.size
                        else:
                            train.write(ids.tobytes())
                            stats.symbols_train += ids.size
                        stats.games_kept += 1
                    bar.update(1)
                    if stats.games_read % 1000 == 0:
                        bar.set_postfix(kept=stats.games_kept, rejected=sum(stats.rejected.values()))
        bar.close()
    if stats.games_read == 0:
        raise DataError("no games found in the input")
    if stats.games_kept == 0:
        raise DataError(f"no game passed the filters ({dict(stats.rejected)})")
    (out_dir / "train.bin.tmp").replace(out_dir / "train.bin")
    (out_dir / "val.bin.tmp").replace(out_dir / "val.bin")
    meta = {
        "vocab": VOCAB,
        "sources": [str(p) for p in inputs],
        "filters": {"max_elo": game_filter.max_elo, "min_elo": game_filter.min_elo, "min_moves": game_filter.min_moves},
        "val_fraction": val_fraction,
        "games_read": stats.games_read,
        "games_kept": stats.games_kept,
        "rejected": dict(stats.rejected),
        "symbols": {"train": stats.symbols_train, "val": stats.symbols_val},
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return stats


def load_split(data_dir: Path, split: str) -> np.ndarray:
    """Memory-map ``train.bin`` or ``val.bin`` of a prepared dataset."""
    path = Path(data_dir) / f"{split}.bin"
    if not path.is_file():
        raise DataError(f"{data_dir}: not a prepared dataset (missing {split}.bin)")
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")
