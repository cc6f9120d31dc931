"""Training windows drawn from a prepared dataset, with value (win/draw/loss) targets.

Windows: an example is ``block_size + 1`` consecutive symbols that begin at a game start (``;``); the
game is drawn uniformly from the split's games, and the window runs on into the following games when
the game is shorter (a window reaching the end of the split wraps to its start, which is a game start
too). x is the window without its last symbol, y without its first. This keeps the paper's layout
(every block begins with ``;1.``, games packed after it, no loss masking) without a packing pass.

Which games: ``{split}_games.npy`` (the per-game index that ``data prepare`` writes: start, length,
result) when present, else the ``;`` positions found by scanning ``{split}.bin`` in chunks. Results,
and so the value head, need the index.

Value target of each input position t: the result of the game that symbol t belongs to, from the
point of view of the side to move there, as a class 0 = win, 1 = draw, 2 = loss (-1 = unknown
result, ignored). The side to move is the side whose move is being written or comes next: White
until the first space of the game, then alternating at every space (spaces only separate moves).
So at the last symbol of the engine's prompt (``;1.e4 e5 2.`` or ``;1.e4 ``), the target is the
result for the side to move in that position, which is how the engine reads ``wdl_logits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import INDEX_DTYPE, DataError, load_index, load_split
from ..transcript import GAME_START_ID, SPACE_ID, VOCAB, decode
from .config import TrainingError

_SCAN_CHUNK = 1 << 26


@dataclass(frozen=True)
class Split:
    """One split of a dataset: its symbols and where its games start."""

    name: str
    tokens: np.ndarray
    """uint8 symbol ids (a memory map)."""
    starts: np.ndarray
    """int64 offsets of each game's ``;``, increasing, the first at 0."""
    results: np.ndarray | None
    """int8 result of each game from White's side (0 win, 1 draw, 2 loss, -1 unknown), from the index."""

    @property
    def n_games(self) -> int:
        return int(self.starts.size)

    def game_text(self, game: int) -> str:
        end = int(self.starts[game + 1]) if game + 1 < self.n_games else int(self.tokens.size)
        return decode(np.asarray(self.tokens[int(self.starts[game]) : end]))


def load_game_index(data_dir: Path, split: str, tokens: np.ndarray) -> np.ndarray | None:
    """The ``{split}_games.npy`` index checked against ``tokens``, or None when the file is absent."""
    path = Path(data_dir) / f"{split}_games.npy"
    if not path.is_file():
        return None
    try:
        index = load_index(data_dir, split)
    except (ValueError, OSError) as exc:
        raise TrainingError(f"{path}: unreadable game index ({exc})") from None
    if index.dtype != INDEX_DTYPE or index.ndim != 1:
        raise TrainingError(f"{path}: not a game index (dtype {index.dtype}, expected start, length, result)")
    if index.size:
        starts = index["start"]
        first, last = int(starts[0]), int(starts[-1])
        if first != 0 or last >= tokens.size or tokens[first] != GAME_START_ID or tokens[last] != GAME_START_ID:
            raise TrainingError(f"{path} does not match {split}.bin; run `transcend data prepare` again")
    return index


def _scan_game_starts(tokens: np.ndarray) -> np.ndarray:
    parts = [np.flatnonzero(np.asarray(tokens[i : i + _SCAN_CHUNK]) == GAME_START_ID) + i
             for i in range(0, tokens.size, _SCAN_CHUNK)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def load_split_games(data_dir: Path, split: str, need_results: bool) -> Split:
    """Load one split; with ``need_results`` the game index (with results) must exist."""
    try:
        tokens = load_split(data_dir, split)
    except DataError as exc:
        raise TrainingError(str(exc)) from None
    head = np.asarray(tokens[:_SCAN_CHUNK])
    if head.size and int(head.max()) >= len(VOCAB):
        raise TrainingError(f"{data_dir}: {split}.bin holds symbol id {int(head.max())}, outside the "
                            f"{len(VOCAB)}-symbol vocabulary; run `transcend data prepare` again")
    index = load_game_index(data_dir, split, tokens)
    if index is None:
        if need_results and tokens.size:
            raise TrainingError(
                f"{data_dir}: the value head needs game results, but {split}_games.npy is missing; "
                "run `transcend data prepare` again"
            )
        starts, results = _scan_game_starts(tokens), None
    else:
        starts = np.ascontiguousarray(index["start"], dtype=np.int64)
        results = np.ascontiguousarray(index["result"], dtype=np.int8)
    if tokens.size and (starts.size == 0 or starts[0] != 0):
        raise TrainingError(f"{data_dir}: {split}.bin does not begin with a game start (';')")
    return Split(split, tokens, starts, results)


def value_targets(windows: np.ndarray, first_games: np.ndarray, results: np.ndarray) -> np.ndarray:
    """Win/draw/loss class for the side to move at each symbol of ``windows`` (see the module doc).

    windows: (B, L) symbol ids, each beginning at the ``;`` of game ``first_games[b]``; results: the
    split's per-game results from White's side. Returns int64 (B, L), -1 where the result is unknown.
    """
    is_start = windows == GAME_START_ID
    game = (first_games[:, None] + np.cumsum(is_start, axis=1) - 1) % results.size
    spaces = np.cumsum(windows == SPACE_ID, axis=1)
    spaces_at_game_start = np.maximum.accumulate(np.where(is_start, spaces, 0), axis=1)
    black_to_move = (spaces - spaces_at_game_start) % 2 == 1
    white_result = results[game].astype(np.int64)
    return np.where(white_result < 0, -1, np.where(black_to_move, 2 - white_result, white_result))


@dataclass(frozen=True)
class Batch:
    x: np.ndarray
    """(B, block_size) int64 input symbols."""
    y: np.ndarray
    """(B, block_size) int64 next symbols."""
    value: np.ndarray | None
    """(B, block_size) int64 win/draw/loss class of each input position, -1 unknown; None without results."""


def sample_batch(split: Split, batch_size: int, block_size: int, rng: np.random.Generator,
                 with_values: bool) -> Batch:
    """``batch_size`` windows of ``block_size + 1`` symbols, each starting at a uniformly drawn game."""
    if split.n_games == 0:
        raise TrainingError(f"the {split.name} split has no games")
    games = rng.integers(0, split.n_games, size=batch_size)
    index = split.starts[games][:, None] + np.arange(block_size + 1)[None, :]
    windows = np.take(split.tokens, index, mode="wrap").astype(np.int64)
    value = None
    if with_values:
        if split.results is None:
            raise TrainingError(f"the {split.name} split has no game results (no {split.name}_games.npy)")
        value = value_targets(windows[:, :-1], games, split.results)
    return Batch(windows[:, :-1], windows[:, 1:], value)
