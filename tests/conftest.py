"""Shared fixtures: small real data made on the spot, and one tiny trained + exported model."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import chess
import chess.pgn
import pytest

from transcend.transcript import sans_from_moves, transcript_from_sans


def transcript_of(board: chess.Board) -> str:
    """The transcript of the moves on ``board``'s stack (a game from the standard start)."""
    return transcript_from_sans(sans_from_moves(board.move_stack))


def random_game(rng: random.Random, max_plies: int = 160) -> chess.Board:
    board = chess.Board()
    while not board.is_game_over() and len(board.move_stack) < max_plies:
        board.push(rng.choice(list(board.legal_moves)))
    return board


def write_random_pgn(path: Path, n_games: int, seed: int = 0, elo_range=(800, 1600)) -> Path:
    """Random legal games with random ratings, written as PGN."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n_games):
            game = chess.pgn.Game.from_board(random_game(rng))
            game.headers["WhiteElo"] = str(rng.randint(*elo_range))
            game.headers["BlackElo"] = str(rng.randint(*elo_range))
            print(game, file=f, end="\n\n")
    return path


def lichess_game_text(board: chess.Board, headers: dict[str, str] | None = None, seed: int = 0,
                      evals: bool = False) -> str:
    """A game as lichess's database dumps write it: lichess's 17 tags, one movetext line
    ``1. e4 { [%clk 0:03:00] } 1... e5 { [%clk 0:03:00] } 2. Nf3?! ...`` with clock comments (eval
    comments too with ``evals``), suffixes on a few moves, and the result."""
    rng = random.Random(seed)
    result = board.result() if board.is_game_over() else rng.choice(["1-0", "0-1", "1/2-1/2"])
    tags = {"Event": "Rated Blitz game", "Site": f"https://lichess.org/{rng.getrandbits(40):010x}",
            "Date": "2023.01.01", "Round": "-", "White": f"player{rng.randint(1, 10**6)}",
            "Black": f"player{rng.randint(1, 10**6)}", "Result": result, "UTCDate": "2023.01.01",
            "UTCTime": "12:00:00", "WhiteElo": str(rng.randint(800, 2400)), "BlackElo": str(rng.randint(800, 2400)),
            "WhiteRatingDiff": "+5", "BlackRatingDiff": "-5", "ECO": "C20", "Opening": "King's Pawn Game",
            "TimeControl": "180+0", "Termination": "Normal"}
    tags.update(headers or {})
    replay, clocks, parts = chess.Board(), [180, 180], []
    for ply, move in enumerate(board.move_stack):
        san = replay.san(move) + (rng.choice(["?!", "?", "??", "!", "!?"]) if rng.random() < 0.05 else "")
        replay.push(move)
        clocks[ply % 2] = max(0, clocks[ply % 2] - rng.randint(0, 6))
        eval_ = f"[%eval {rng.uniform(-3, 3):.2f}] " if evals else ""
        number = f"{ply // 2 + 1}." if ply % 2 == 0 else f"{ply // 2 + 1}..."
        clock = clocks[ply % 2]
        parts.append(f"{number} {san} {{ {eval_}[%clk 0:{clock // 60:02d}:{clock % 60:02d}] }}")
    tag_lines = "".join(f'[{k} "{v}"]\n' for k, v in tags.items())
    return f"{tag_lines}\n{' '.join(parts + [result])}\n\n"


def write_lichess_pgn(path: Path, n_games: int, seed: int = 0, distinct: int | None = None,
                      eval_share: float = 0.1) -> Path:
    """``n_games`` lichess-format games (about 2.5 kB each, like a lichess dump): ``distinct`` random
    legal games with random ratings (all different by default), repeated in turn."""
    rng = random.Random(seed)
    texts = [lichess_game_text(random_game(rng, max_plies=rng.randint(20, 130)), seed=rng.getrandbits(32),
                               evals=rng.random() < eval_share) for _ in range(distinct or n_games)]
    with open(path, "w") as f:
        for i in range(n_games):
            f.write(texts[i % len(texts)])
    return path


FAKE_ENGINE = """\
#!{python}
# A UCI engine that misbehaves on purpose: {mode}
import sys, time
import chess

mode, board, searches = {mode!r}, chess.Board(), 0
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "uci":
        print("id name fake-" + mode)
        print("uciok", flush=True)
    elif cmd[0] == "isready":
        print("readyok", flush=True)
    elif cmd[0] == "position":
        board = chess.Board()
        if "moves" in cmd:
            for uci in cmd[cmd.index("moves") + 1:]:
                board.push_uci(uci)
    elif cmd[0] == "go":
        searches += 1
        if mode == "crash" and searches >= 2:
            sys.exit(3)
        if mode == "slow":
            time.sleep(1.0)
        move = "a1a8" if mode == "illegal" else next(iter(board.legal_moves)).uci()
        print("bestmove " + move, flush=True)
    elif cmd[0] == "quit":
        break
"""


def write_fake_engine(directory: Path, mode: str) -> Path:
    """A UCI engine that misbehaves on purpose: ``crash`` exits at its second search, ``illegal`` always
    answers a1a8, ``slow`` takes a second a move."""
    path = directory / f"fake_{mode}.py"
    path.write_text(FAKE_ENGINE.format(python=sys.executable, mode=mode))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def stockfish() -> str:
    from transcend.experts import ExpertError, find_stockfish

    try:
        return find_stockfish()
    except ExpertError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny model trained for 300 steps on random games: a real run directory."""
    from transcend.data import GameFilter, prepare
    from transcend.training import TrainConfig, preset, train

    root = tmp_path_factory.mktemp("tiny")
    pgn = write_random_pgn(root / "games.pgn", 400)
    prepare([str(pgn)], root / "data", GameFilter(), val_fraction=0.05, progress=False)
    cfg = TrainConfig(batch_size=8, max_iters=300, warmup_iters=30, lr_decay_iters=300, eval_interval=150,
                      eval_iters=4, checkpoint_interval=150)
    train(root / "data", root / "run", preset("tiny")[0], cfg, progress=False)
    return root / "run"


@pytest.fixture(scope="session")
def tiny_onnx(tiny_run, tmp_path_factory) -> Path:
    from transcend.export import export

    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export(tiny_run, out)
    return out
