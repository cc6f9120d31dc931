"""``data synth``: games between experts of known strength, written as PGN that ``prepare`` reads.

Game ``i`` (0-based) is a function of the settings, the seed and ``i`` alone: its pairing (round
robin over the experts, each pair playing two games with colours swapped), its random opening plies
and the random experts' choices come from a generator seeded with ``"{seed}:{i}"``, and Stockfish
gets ``ucinewgame`` before every game, so node- or depth-limited searches repeat exactly (Stockfish's
skill levels and movetime limits do not: they depend on the clock).

That is what makes a run resumable: games are appended whole, in order, flushed and synced, and a
new run on the same file counts the complete games, drops a partial last one, and continues from
there. Every game carries its settings in a ``SynthSettings`` tag; a file written with other
settings is refused rather than mixed.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import chess
import chess.pgn

from ..errors import TranscendError
from ..experts import Expert, ExpertError, find_stockfish, open_expert, parse_expert_spec
from .pgn import RESULT_CODES

_EVENT = "transcend synth"
_TAG_LINE = re.compile(r'^\[(\w+) "(.*)"\]$', re.M)


class SynthError(TranscendError):
    """Bad synth settings, or an output file that cannot be continued."""


@dataclass(frozen=True)
class SynthConfig:
    experts: tuple[str, ...]
    games: int
    seed: int = 0
    elos: dict[str, int] = field(default_factory=dict)
    random_plies: int = 0
    max_plies: int = 1000
    """Games still going after this many plies are stopped and scored a draw (Termination
    "Adjudication"); the paper's evaluation used 180 (after full move 90)."""
    stockfish: str | None = None

    def __post_init__(self) -> None:
        if not self.experts:
            raise SynthError("give at least one --expert")
        specs = tuple(str(parse_expert_spec(spec)) for spec in self.experts)
        duplicate = next((s for s in specs if specs.count(s) > 1), None)
        if duplicate:
            raise SynthError(f"expert {duplicate!r} is given twice")
        object.__setattr__(self, "experts", specs)
        elos = {str(parse_expert_spec(spec)): rating for spec, rating in self.elos.items()}
        unknown = set(elos) - set(specs)
        if unknown:
            raise SynthError(f"--elo names {sorted(unknown)[0]!r}, which is not one of the --expert specs")
        object.__setattr__(self, "elos", elos)
        if self.games < 1 or self.random_plies < 0 or self.max_plies < 1:
            raise SynthError("games and max plies must be positive, random plies not negative")

    def settings(self) -> str:
        """What the games depend on, written in every game (``SynthSettings`` tag)."""
        return (f"seed={self.seed} random_plies={self.random_plies} max_plies={self.max_plies} "
                f"experts={'|'.join(self.experts)}")

    def pairing(self, index: int) -> tuple[str, str]:
        """(White, Black) of game ``index``: pairs in round robin order, colours swapped every game."""
        if len(self.experts) == 1:
            return self.experts[0], self.experts[0]
        pairs = list(itertools.combinations(self.experts, 2))
        first, second = pairs[(index // 2) % len(pairs)]
        return (first, second) if index % 2 == 0 else (second, first)


def parse_elos(items: Iterable[str], experts: Iterable[str]) -> dict[str, int]:
    """``SPEC=RATING`` items (the spec may itself contain '=') as {spec: rating}."""
    elos = {}
    for item in items:
        spec, eq, rating = item.rpartition("=")
        if not eq or not spec:
            raise SynthError(f"--elo {item!r}: use SPEC=RATING, e.g. stockfish:skill=1=1350")
        try:
            elos[spec] = int(rating)
        except ValueError:
            raise SynthError(f"--elo {item!r}: the rating must be a whole number") from None
    return elos


@dataclass
class SynthReport:
    played: int
    """Games played by this run."""
    total: int
    """Games in the file now."""
    seconds: float


class _Players:
    """The experts of one process, opened on first use and kept for all its games."""

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        self.experts: dict[str, Expert] = {}

    def get(self, spec: str) -> Expert:
        if spec not in self.experts:
            self.experts[spec] = open_expert(spec, self.config.stockfish, seed=0, setpgrp=True)
        return self.experts[spec]

    def close(self) -> None:
        for expert in self.experts.values():
            expert.close()
        self.experts.clear()


def _game_end(board: chess.Board, max_plies: int) -> tuple[str, str] | None:
    """(result, termination) when the game is over: by the rules as lichess applies them
    (threefold repetition and the fifty-move rule end it at once), or at the ply cap."""
    outcome = board.outcome(claim_draw=False)
    if outcome is not None:
        return outcome.result(), "Normal"
    if board.halfmove_clock >= 100 or board.is_repetition(3):
        return "1/2-1/2", "Normal"
    if board.ply() >= max_plies:
        return "1/2-1/2", "Adjudication"
    return None


def play_game(config: SynthConfig, players: _Players, index: int) -> str:
    """Game ``index`` as PGN text (ending with a blank line)."""
    white_spec, black_spec = config.pairing(index)
    rng = random.Random(f"{config.seed}:{index}")
    white, black = players.get(white_spec), players.get(black_spec)
    white.new_game(rng.getrandbits(63))
    if black is not white:
        black.new_game(rng.getrandbits(63))
    board = chess.Board()
    while (end := _game_end(board, config.max_plies)) is None:
        if board.ply() < config.random_plies:
            move = rng.choice(list(board.legal_moves))
        else:
            player = white if board.turn == chess.WHITE else black
            try:
                move = player.choose(board)
            except ExpertError as exc:
                raise ExpertError(f"game {index + 1}: {player.name} failed: {exc}") from None
            if not board.is_legal(move):
                raise ExpertError(f"game {index + 1}: {player.name} played the illegal move {move} in {board.fen()}")
        board.push(move)
    result, termination = end
    game = chess.pgn.Game.from_board(board)
    headers = game.headers
    headers.update(Event=_EVENT, Site="?", Date="????.??.??", Round=str(index + 1), White=white_spec,
                   Black=black_spec, Result=result)
    for color, spec in (("White", white_spec), ("Black", black_spec)):
        if spec in config.elos:
            headers[f"{color}Elo"] = str(config.elos[spec])
    headers["Termination"] = termination
    headers["SynthSettings"] = config.settings()
    return str(game) + "\n\n"


# One process's experts, in pool workers.
_worker_players: _Players | None = None


def _start_worker(config: SynthConfig) -> None:
    import multiprocessing.util
    import signal

    global _worker_players
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    _worker_players = _Players(config)
    multiprocessing.util.Finalize(None, _worker_players.close, exitpriority=10)


def _worker_game(index: int) -> str:
    assert _worker_players is not None
    return play_game(_worker_players.config, _worker_players, index)


def _played_games(config: SynthConfig, indices: range, workers: int) -> Iterator[str]:
    """The games of ``indices`` in order, played here or by ``workers`` processes."""
    if workers <= 1 or len(indices) <= 1:
        players = _Players(config)
        try:
            for index in indices:
                yield play_game(config, players, index)
        finally:
            players.close()
        return
    import multiprocessing

    pool = multiprocessing.get_context("spawn").Pool(min(workers, len(indices)), _start_worker, (config,))
    try:
        yield from pool.imap(_worker_game, indices)
        pool.close()
        pool.join()
    finally:
        pool.terminate()


def synth(config: SynthConfig, out_path: Path, workers: int = 1, progress: bool = True) -> SynthReport:
    """Play games until ``out_path`` holds ``config.games`` of them, appending whole games."""
    from tqdm import tqdm

    if any(parse_expert_spec(spec).kind == "stockfish" for spec in config.experts):
        find_stockfish(config.stockfish)  # a clear error now rather than in a worker
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = resume_point(out_path, config)
    start = time.perf_counter()
    played = 0
    if done < config.games:
        with open(out_path, "ab") as out, tqdm(total=config.games, initial=done, unit=" games", desc="synth",
                                               disable=None if progress else True) as bar:
            for text in _played_games(config, range(done, config.games), workers):
                out.write(text.encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())
                played += 1
                bar.update(1)
    return SynthReport(played, done + played, time.perf_counter() - start)


@dataclass(frozen=True)
class PairingScore:
    """Results of one pairing of a synth file, from the first expert's side."""

    first: str
    second: str
    wins: int
    draws: int
    losses: int

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def score(self) -> float:
        return (self.wins + 0.5 * self.draws) / self.games


_GAME_TAGS = re.compile(rb'\[White "([^"]*)"\]\s*\[Black "([^"]*)"\]\s*\[Result "([^"]*)"\]')


def pairing_scores(path: Path, experts: tuple[str, ...]) -> list[PairingScore]:
    """W/D/L of every pairing in a synth PGN, from the side of the expert given first in ``experts``."""
    order = {spec: i for i, spec in enumerate(experts)}
    tally: dict[tuple[str, str], list[int]] = {}
    points = {b"1-0": (0, 2), b"0-1": (2, 0), b"1/2-1/2": (1, 1)}
    with open(path, "rb") as f:
        for white, black, result in _GAME_TAGS.findall(f.read()):
            if result not in points:
                continue
            w, b = white.decode(), black.decode()
            first, second = sorted((w, b), key=lambda spec: order.get(spec, len(order)))
            outcome = points[result][0 if first == w else 1]  # 0 win, 1 draw, 2 loss for ``first``
            tally.setdefault((first, second), [0, 0, 0])[outcome] += 1
    return [PairingScore(a, b, *counts) for (a, b), counts in tally.items()]


def resume_point(path: Path, config: SynthConfig) -> int:
    """The number of complete games in ``path`` (0 when it does not exist), after cutting off a
    partial last game; refuses a file that synth did not write with these settings."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    count, starts = _scan_games(path)
    if not count:
        raise SynthError(f"{path}: not a PGN file written by `transcend data synth`; choose another --out")
    with open(path, "rb+") as f:
        f.seek(starts[-1])
        length = _complete_length(f.read())
        if length is None:  # a game cut short by a kill: cut it off, it is played again
            end = starts.pop()
            count -= 1
        else:
            end = starts[-1] + length
        if end < f.seek(0, os.SEEK_END):
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
        if not count:
            return 0
        f.seek(starts[-1])
        last = f.read()
    tags = dict(_TAG_LINE.findall(last.decode("utf-8", "replace")))
    if tags.get("Event") != _EVENT or tags.get("SynthSettings") != config.settings():
        raise SynthError(f"{path} was written with other settings ({tags.get('SynthSettings', 'not by synth')}); "
                         f"these are {config.settings()}: choose another --out, or the same settings to continue it")
    if tags.get("Round") != str(count):
        raise SynthError(f"{path}: its last game is number {tags.get('Round')} but it holds {count} games; "
                         "the file was edited, choose another --out")
    return count


def _scan_games(path: Path) -> tuple[int, list[int]]:
    """(number of games, offsets of the last two), streaming through the file for Event tags."""
    marker = b'\n[Event "'
    starts: list[int] = []
    count = 0
    offset = 0
    tail = b"\n"  # the file's start counts as a line start
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            data = tail + block
            base = offset - len(tail)
            pos = data.find(marker)
            while pos >= 0:
                count += 1
                starts = [*starts[-1:], base + pos + 1]
                pos = data.find(marker, pos + 1)
            offset += len(block)
            tail = data[-(len(marker) - 1):]
    return count, starts


def _complete_length(text: bytes) -> int | None:
    """The length of the whole game that ``text`` begins with, as synth writes one (tags, a blank
    line, movetext ending with the result, a blank line), or None when it is cut short."""
    tags_end = text.find(b"\n\n")
    end = text.find(b"\n\n", tags_end + 2) if tags_end >= 0 else -1
    if end < 0:
        return None
    movetext = text[tags_end:end].split()
    return end + 2 if movetext and movetext[-1] in RESULT_CODES else None
