"""How much of a model's move choice is chess: three smooth measures over positions of real games.

    python scripts/move_agreement.py MODEL.onnx DATA_DIR [N] [--seed S] [--depth D]

Positions are drawn from the validation games of a prepared dataset (``transcend data prepare``):
a game uniformly, then a position of it uniformly (before any of its moves, the game's end
excluded). In each, the engine's move scorer gives the model's exact probability of every legal
move, and Stockfish at depth D (1 by default) gives its move. Printed as one JSON object:

* ``legal_mass``: the mean total probability the model puts on legal moves (1.0 once it knows the
  rules and where the pieces are; the rest of its mass goes to text that is no legal move);
* ``top1_stockfish``: how often the model's most probable legal move (what the engine plays at
  T = 0.001) is Stockfish's move;
* ``p_stockfish``: the mean probability the model gives Stockfish's move;
* ``top1_random_mover``: how often a uniformly random legal move would be Stockfish's, on the same
  positions: the chance level ``top1_stockfish`` is to be read against.

These move long before scores against opponents do (docs/scaling.md), so they tell whether a longer
run is learning the position at all.
"""

from __future__ import annotations

import argparse
import json
import sys

import chess
import chess.engine
import numpy as np

from transcend.data.prepare import load_split
from transcend.errors import TranscendError
from transcend.experts import find_stockfish
from transcend.inference.policy import MovePolicy
from transcend.inference.runtime import OnnxModel
from transcend.transcript import GAME_START, decode, sans_from_transcript


def validation_games(data_dir: str) -> list[list[str]]:
    """The SAN moves of each validation game of a prepared dataset."""
    text = decode(np.asarray(load_split(data_dir, "val")))
    games = [sans_from_transcript(GAME_START + game) for game in text.split(GAME_START) if game.strip()]
    return [g for g in games if g]


def board_after(sans: list[str]) -> chess.Board:
    board = chess.Board()
    for san in sans:
        board.push_san(san)
    return board


def agreement(policy: MovePolicy, engine: chess.engine.SimpleEngine, games: list[list[str]], positions: int,
              rng: np.random.Generator, depth: int = 1) -> dict[str, float | int]:
    """The measures over ``positions`` positions drawn from ``games`` (see the module docstring)."""
    mass, top1, p_best, chance = [], [], [], []
    while len(mass) < positions:
        game = games[int(rng.integers(len(games)))]
        board = board_after(game[: int(rng.integers(len(game)))])
        if board.is_game_over():
            continue
        policy.reset()
        scores = policy.score_legal_moves(board)
        best = engine.play(board, chess.engine.Limit(depth=depth)).move
        probs = np.exp(scores.log_probs)
        mass.append(probs.sum())
        top1.append(scores.moves[int(np.argmax(probs))] == best)
        p_best.append(probs[scores.moves.index(best)])
        chance.append(1.0 / len(scores.moves))
    return {"positions": positions, "legal_mass": round(float(np.mean(mass)), 4),
            "top1_stockfish": round(float(np.mean(top1)), 4), "p_stockfish": round(float(np.mean(p_best)), 4),
            "top1_random_mover": round(float(np.mean(chance)), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="exported .onnx model")
    parser.add_argument("data", help="prepared dataset directory (its validation games are used)")
    parser.add_argument("positions", nargs="?", type=int, default=500, help="positions to measure (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the positions drawn (default 0)")
    parser.add_argument("--depth", type=int, default=1, help="Stockfish's search depth (default 1)")
    parser.add_argument("--stockfish", help="Stockfish binary (default: on PATH)")
    args = parser.parse_args(argv)
    if args.positions < 1 or args.depth < 1:
        parser.error("positions and --depth must be at least 1")
    try:
        games = validation_games(args.data)
        if not games:
            raise TranscendError(f"{args.data}: no validation games")
        policy = MovePolicy(OnnxModel(args.model, provider="cpu", threads=1))
        engine = chess.engine.SimpleEngine.popen_uci(find_stockfish(args.stockfish))
    except (TranscendError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        result = agreement(policy, engine, games, args.positions, np.random.default_rng(args.seed), args.depth)
    finally:
        engine.quit()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
