"""``data prepare``: PGN sources to a dataset directory, streaming, on one core or many.

The reader process cuts the sources into chunks of whole games (``sources``); each chunk is parsed,
filtered and encoded (``parse_chunk``) in this process or in a pool of workers; the results are
written in chunk order, so the output does not depend on ``workers``. Memory stays flat: a few
chunks in flight, the per-game index streamed to a raw file and given its ``.npy`` header at the end.

Outputs (docs/formats.md, "Datasets", and README "Data"): ``train.bin`` / ``val.bin`` (uint8 symbol ids, every
game starting with ``;``), ``train_games.npy`` / ``val_games.npy`` (one INDEX_DTYPE row per game),
``meta.json``. Everything is written to ``*.tmp`` files and renamed at the end, ``meta.json`` last:
a directory without ``meta.json`` is not a dataset, so an interrupted run never leaves one that looks
valid, and an earlier dataset in the same directory stays whole until the new one is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import write_text
from ..transcript import VOCAB
from .filters import GameFilter
from .pgn import result_code, sans_from_movetext, split_games, transcript_bytes
from .sources import DamagedInput, DataError, check_sources, iter_chunks, read_blocks

FORMAT_VERSION = 2
SPLITS = ("train", "val")
INDEX_DTYPE = np.dtype([("start", "<i8"), ("length", "<i4"), ("result", "i1")])
"""One row per game of a split: offset of its ``;`` in the .bin, length in symbols, PGN result
(0 = White won, 1 = draw, 2 = Black won, -1 = unknown or unfinished)."""

_SYMBOL_IDS = bytes.maketrans(VOCAB.encode("ascii"), bytes(range(len(VOCAB))))


@dataclass(frozen=True)
class ChunkConfig:
    game_filter: GameFilter
    val_fraction: float
    validate: bool


@dataclass
class SplitPart:
    """The kept games of one split of one chunk."""

    ids: bytes
    lengths: np.ndarray  # int32
    results: np.ndarray  # int8


@dataclass
class ChunkResult:
    games_read: int
    rejected: Counter
    parts: dict[str, SplitPart]


@dataclass
class PrepareStats:
    games_read: int = 0
    games_kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    games: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    symbols: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    input_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def symbols_train(self) -> int:
        return self.symbols["train"]

    @property
    def symbols_val(self) -> int:
        return self.symbols["val"]

    def add(self, result: ChunkResult) -> None:
        self.games_read += result.games_read
        self.rejected.update(result.rejected)
        for name, part in result.parts.items():
            self.games[name] += part.lengths.size
            self.games_kept += part.lengths.size


def validation_threshold(val_fraction: float) -> int:
    return min(int(val_fraction * 2**64), 2**64)


def in_validation(transcript: bytes, threshold: int) -> bool:
    """Deterministic split by game: a hash of its transcript, so the same game always lands on the
    same side (duplicates included, so nothing leaks from train to val)."""
    return int.from_bytes(hashlib.blake2b(transcript, digest_size=8).digest(), "little") < threshold


def replay(sans: list[bytes]) -> list[bytes] | None:
    """The moves replayed with python-chess, as python-chess writes them; None at an illegal move."""
    import chess

    board = chess.Board()
    out = []
    try:
        for san in sans:
            out.append(board.san_and_push(board.parse_san(san.decode("ascii"))).encode("ascii"))
    except ValueError:
        return None
    return out


def parse_chunk(chunk: bytes, config: ChunkConfig) -> ChunkResult:
    """Parse, filter and encode the games of one chunk (runs in a worker process)."""
    game_filter = config.game_filter
    threshold = validation_threshold(config.val_fraction)
    rejected: Counter = Counter()
    kept: dict[str, tuple[list[bytes], list[int], list[int]]] = {name: ([], [], []) for name in SPLITS}
    read = 0
    for tags, movetext in split_games(chunk):
        read += 1
        if tags is None:
            rejected["no_headers"] += 1
            continue
        reason = game_filter.reject_tags(tags)
        if reason is None and movetext is None:
            reason = "no_moves"
        if reason is None and not movetext.isascii():
            try:
                movetext.decode("utf-8")
            except UnicodeDecodeError:
                reason = "invalid_utf8"
        sans = None
        if reason is None:
            sans = sans_from_movetext(movetext)
            if sans is None:
                reason = "parse_error"
            else:
                reason = game_filter.reject_length(len(sans))
        if reason is None and config.validate:
            sans = replay(sans)
            if sans is None:
                reason = "illegal_move"
        if reason is not None:
            rejected[reason] += 1
            continue
        transcript = transcript_bytes(sans)
        texts, lengths, results = kept["val" if in_validation(transcript, threshold) else "train"]
        texts.append(transcript)
        lengths.append(len(transcript))
        results.append(result_code(tags, movetext))
    parts = {
        name: SplitPart(b"".join(texts).translate(_SYMBOL_IDS), np.array(lengths, dtype=np.int32),
                        np.array(results, dtype=np.int8))
        for name, (texts, lengths, results) in kept.items()
    }
    return ChunkResult(read, rejected, parts)


class _SplitWriter:
    """Appends one split's games to ``NAME.bin.tmp`` and their index rows to a raw temporary file."""

    def __init__(self, out_dir: Path, name: str) -> None:
        self.name = name
        self.bin_path = out_dir / f"{name}.bin.tmp"
        self.raw_index_path = out_dir / f"{name}_games.raw.tmp"
        self.index_path = out_dir / f"{name}_games.npy.tmp"
        self.bin = open(self.bin_path, "wb")
        self.index = open(self.raw_index_path, "wb")
        self.symbols = 0
        self.games = 0

    def write(self, part: SplitPart) -> None:
        if not part.lengths.size:
            return
        rows = np.empty(part.lengths.size, dtype=INDEX_DTYPE)
        ends = np.cumsum(part.lengths, dtype=np.int64)
        rows["start"] = self.symbols + ends - part.lengths
        rows["length"] = part.lengths
        rows["result"] = part.results
        self.bin.write(part.ids)
        self.index.write(rows.tobytes())
        self.symbols += int(ends[-1])
        self.games += int(part.lengths.size)

    def finish(self) -> None:
        """Close the files and give the index its .npy header (copied through, memory flat)."""
        self.bin.close()
        self.index.close()
        header = {"descr": np.lib.format.dtype_to_descr(INDEX_DTYPE), "fortran_order": False, "shape": (self.games,)}
        with open(self.index_path, "wb") as out, open(self.raw_index_path, "rb") as raw:
            np.lib.format.write_array_header_1_0(out, header)
            shutil.copyfileobj(raw, out, 1 << 22)
            out.flush()
            os.fsync(out.fileno())
        self.raw_index_path.unlink()
        with open(self.bin_path, "rb+") as f:
            os.fsync(f.fileno())

    def close(self) -> None:
        self.bin.close()
        self.index.close()

    def temporary_paths(self) -> list[Path]:
        return [self.bin_path, self.raw_index_path, self.index_path]


def _chunks(inputs: list[str], stats: PrepareStats, chunk_size: int):
    for path in inputs:
        try:
            yield from iter_chunks(read_blocks(path), chunk_size=chunk_size)
        except DamagedInput as exc:
            stats.input_errors.append(str(exc))
            stats.games_read += exc.games_lost
            stats.rejected["truncated"] += exc.games_lost


def _results(chunks, config: ChunkConfig, workers: int):
    """parse_chunk over ``chunks``, in order, with at most 2 chunks per worker in flight."""
    if workers <= 1:
        for chunk in chunks:
            yield parse_chunk(chunk, config)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers, initializer=_ignore_sigint) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.apply_async(parse_chunk, (chunk, config)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops them and removes the temporary files."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def prepare(
    inputs: list[str],
    out_dir: Path,
    game_filter: GameFilter | None = None,
    val_fraction: float = 0.01,
    progress: bool = True,
    workers: int = 1,
    validate: bool = False,
    chunk_size: int | None = None,
) -> PrepareStats:
    """Stream ``inputs`` (paths, or ``-`` for stdin) into the dataset directory ``out_dir``."""
    from tqdm import tqdm

    from .sources import CHUNK_SIZE

    inputs = [str(p) for p in inputs]
    check_sources(inputs)
    if not 0.0 <= val_fraction <= 1.0:
        raise DataError(f"val fraction {val_fraction} is not between 0 and 1")
    if workers < 1:
        raise DataError(f"workers must be at least 1 (got {workers})")
    game_filter = game_filter or GameFilter()
    config = ChunkConfig(game_filter, val_fraction, validate)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = PrepareStats()
    start = time.perf_counter()
    writers: dict[str, _SplitWriter] = {}
    finished = False
    try:
        for name in SPLITS:
            writers[name] = _SplitWriter(out_dir, name)
        with tqdm(unit=" games", unit_scale=True, disable=None if progress else True, desc="prepare",
                  smoothing=0.1) as bar:
            for result in _results(_chunks(inputs, stats, chunk_size or CHUNK_SIZE), config, workers):
                for name, part in result.parts.items():
                    writers[name].write(part)
                stats.add(result)
                bar.update(result.games_read)
                bar.set_postfix(kept=stats.games_kept, rejected=stats.games_read - stats.games_kept, refresh=False)
        if stats.games_read == 0:
            raise DataError("no games found in the input")
        if stats.games_kept == 0:
            raise DataError(f"no game passed the filters (rejected: {_reasons(stats.rejected)})")
        for writer in writers.values():
            writer.finish()
        stats.symbols = {name: writer.symbols for name, writer in writers.items()}
        stats.seconds = time.perf_counter() - start
        _commit(out_dir, writers, _meta(inputs, config, stats))
        finished = True
    finally:
        for writer in writers.values():
            writer.close()
            if not finished:
                for path in writer.temporary_paths():
                    path.unlink(missing_ok=True)
    return stats


def _reasons(rejected: Counter) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in sorted(rejected.items())) or "none"


def _meta(inputs: list[str], config: ChunkConfig, stats: PrepareStats) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "vocab": VOCAB,
        "sources": inputs,
        "filters": config.game_filter.describe(),
        "validate": config.validate,
        "val_fraction": config.val_fraction,
        "games_read": stats.games_read,
        "games_kept": stats.games_kept,
        "rejected": dict(sorted(stats.rejected.items())),
        "games": dict(stats.games),
        "symbols": dict(stats.symbols),
        "index": {
            "files": {name: f"{name}_games.npy" for name in SPLITS},
            "dtype": [[name, INDEX_DTYPE.fields[name][0].str] for name in INDEX_DTYPE.names],
            "result": {"0": "White won", "1": "draw", "2": "Black won", "-1": "unknown or unfinished"},
        },
        "input_errors": stats.input_errors,
    }


def _commit(out_dir: Path, writers: dict[str, _SplitWriter], meta: dict) -> None:
    """Replace the dataset in ``out_dir``: meta.json goes first and comes back last."""
    (out_dir / "meta.json").unlink(missing_ok=True)
    for name, writer in writers.items():
        writer.bin_path.replace(out_dir / f"{name}.bin")
        writer.index_path.replace(out_dir / f"{name}_games.npy")
    write_text(out_dir / "meta.json", json.dumps(meta, indent=2) + "\n")


def load_split(data_dir: Path, split: str) -> np.ndarray:
    """Memory-map ``train.bin`` or ``val.bin`` of a prepared dataset."""
    path = Path(data_dir) / f"{split}.bin"
    if not path.is_file():
        raise DataError(f"{data_dir}: not a prepared dataset (missing {split}.bin)")
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


def load_index(data_dir: Path, split: str) -> np.ndarray:
    """Memory-map the per-game index ``{split}_games.npy`` (INDEX_DTYPE rows)."""
    path = Path(data_dir) / f"{split}_games.npy"
    if not path.is_file():
        raise DataError(f"{data_dir}: no game index (missing {split}_games.npy); run `transcend data prepare` again")
    return np.load(path, mmap_mode="r", allow_pickle=False)
