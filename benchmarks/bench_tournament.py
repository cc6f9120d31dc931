"""Tournament speed: plies a second of one game (the bundled model against Stockfish at 1 node, so
the figure is the harness and the engines' round trips, not thinking time), and the rating maths for a
paper-sized tournament (2400 games: 8 temperatures x 3 levels x 100).

    python -m pytest benchmarks/bench_tournament.py --benchmark-only -p no:cacheprovider -c /dev/null
"""

from __future__ import annotations

import random
import shutil

import chess
import chess.engine
import pytest

from transcend.inference.runtime import BUNDLED_MODEL
from transcend.tournaments.players import MODEL_ENGINE
from transcend.tournaments.match import EnginePlayer, GameRules, MoveLimit, play_game
from transcend.tournaments.ratings import glicko2_sequential, max_likelihood_elo


@pytest.fixture(scope="module")
def players():
    stockfish = shutil.which("stockfish") or "/usr/games/stockfish"
    model = chess.engine.SimpleEngine.popen_uci([*MODEL_ENGINE, "--model", str(BUNDLED_MODEL), "--seed", "1"])
    model.ping()
    sf = chess.engine.SimpleEngine.popen_uci(stockfish)
    sf.configure({"Threads": 1, "Skill Level": 1})
    yield EnginePlayer(model, "model"), EnginePlayer(sf, "stockfish")
    for engine in (model, sf):
        engine.quit()


def test_plies_per_second_of_a_game(benchmark, players):
    model, stockfish = players
    rules = GameRules(MoveLimit(nodes=1), max_moves=30)
    games = iter(range(10**6))
    plies = []

    def one_game() -> None:
        record = play_game(model, stockfish, chess.Board(), rules, game_key=next(games))
        plies.append(len(record.moves))

    benchmark.pedantic(one_game, rounds=5, iterations=1)
    benchmark.extra_info["plies_per_s"] = round(sum(plies) / sum(benchmark.stats.stats.data), 1)
    assert all(p > 0 for p in plies)


def test_ratings_of_a_paper_sized_tournament(benchmark):
    rng = random.Random(0)
    anchors = [1552, 1842, 2142]
    per_temperature = [[(a, rng.choice((0.0, 0.5, 1.0))) for a in anchors for _ in range(100)] for _ in range(8)]

    def rate() -> None:
        for games in per_temperature:
            glicko2_sequential(games)
            max_likelihood_elo(games)

    benchmark(rate)
