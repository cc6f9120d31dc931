"""Speed of ``data synth`` with fast, nodes-limited Stockfish experts. Run:

    python -m pytest benchmarks/bench_data_synth.py --benchmark-only -p no:cacheprovider -c /dev/null -s

Each test prints games/s (wall clock) and the CPU time a game costs in all processes together
(Python and Stockfish), which does not depend on what else the machine runs: on N idle cores,
``N / cpu_per_game`` is about the rate that ``--workers N`` can reach.
"""

from __future__ import annotations

import resource
import shutil
import time

import pytest

from transcend.data.synth import SynthConfig, synth

GAMES = 60


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.mark.parametrize("experts", [("stockfish:nodes=100",), ("stockfish:nodes=100", "random")],
                         ids=["self-play", "vs-random"])
@pytest.mark.parametrize("workers", [1, 2])
def test_synth(benchmark, tmp_path, workers, experts):
    stockfish = shutil.which("stockfish") or "/usr/games/stockfish"
    config = SynthConfig(experts, games=GAMES, seed=0, random_plies=8, stockfish=stockfish)
    out = tmp_path / "games.pgn"
    cpu = []

    def run():
        out.unlink(missing_ok=True)
        start = cpu_seconds()
        report = synth(config, out, workers=workers, progress=False)
        cpu.append((cpu_seconds() - start) / GAMES)
        return report

    report = benchmark.pedantic(run, rounds=1, iterations=1)
    assert report.played == GAMES
    moves = out.read_text().count(".") / GAMES - 2  # move numbers, less the Date tag's two dots
    rate = GAMES / benchmark.stats.stats.mean
    benchmark.extra_info.update(games_per_s=round(rate, 1), cpu_ms_per_game=round(cpu[-1] * 1000))
    print(f"\nsynth {'+'.join(experts)} --workers {workers}: {rate:.1f} games/s, {cpu[-1] * 1000:.0f} ms of CPU "
          f"a game (about {moves:.0f} moves a game)")
