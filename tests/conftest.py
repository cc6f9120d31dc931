"""Shared fixtures: small real data made on the spot, and one tiny trained + exported model."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import chess
import chess.pgn
import pytest


def stockfish_path() -> str:
    found = shutil.which("stockfish") or ("/usr/games/stockfish" if Path("/usr/games/stockfish").exists() else None)
    if not found:
        pytest.fail("stockfish is not installed (apt-get install -y stockfish)")
    return found


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


@pytest.fixture(scope="session")
def stockfish() -> str:
    return stockfish_path()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny model trained for 300 steps on random games: a real run directory."""
    from transcend.data import GameFilter, prepare
    from transcend.model import preset
    from transcend.training import TrainConfig, train

    root = tmp_path_factory.mktemp("tiny")
    pgn = write_random_pgn(root / "games.pgn", 400)
    prepare([str(pgn)], root / "data", GameFilter(), val_fraction=0.05, progress=False)
    cfg = TrainConfig(batch_size=8, max_iters=300, warmup_iters=30, lr_decay_iters=300, eval_interval=150,
                      eval_iters=4, checkpoint_interval=150)
    train(root / "data", root / "run", preset("tiny"), cfg, progress=False)
    return root / "run"


@pytest.fixture(scope="session")
def tiny_onnx(tiny_run, tmp_path_factory) -> Path:
    from transcend.export import export

    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export(tiny_run, out)
    return out
