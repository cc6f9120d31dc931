"""Speed of ``data synth`` with fast, nodes-limited Stockfish experts (games/s). Run:

    python -m pytest benchmarks/bench_data_synth.py --benchmark-only -p no:cacheprovider -c /dev/null -s
"""

from __future__ import annotations

import shutil

import pytest

from transcend.data.synth import SynthConfig, synth

GAMES = 20


@pytest.mark.parametrize("experts", [("stockfish:nodes=100",), ("stockfish:nodes=100", "random")],
                         ids=["self-play", "vs-random"])
@pytest.mark.parametrize("workers", [1, 2])
def test_synth(benchmark, tmp_path, workers, experts):
    stockfish = shutil.which("stockfish") or "/usr/games/stockfish"
    config = SynthConfig(experts, games=GAMES, seed=0, random_plies=8, stockfish=stockfish)
    plies = []

    def run():
        out = tmp_path / "games.pgn"
        out.unlink(missing_ok=True)
        report = synth(config, out, workers=workers, progress=False)
        plies.append(out.read_text().count(".") - 2 * GAMES)  # move numbers, less the Date tag's dots
        return report

    report = benchmark.pedantic(run, rounds=2, iterations=1)
    assert report.played == GAMES
    rate = GAMES / benchmark.stats.stats.mean
    benchmark.extra_info["games_per_s"] = round(rate, 1)
    print(f"\nsynth {'+'.join(experts)} --workers {workers}: {rate:.1f} games/s "
          f"(about {plies[-1] / GAMES:.0f} moves a game)")
