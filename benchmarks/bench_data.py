"""Speed of ``data prepare`` on lichess-format games, against python-chess's ``read_game``.

The file: 20,000 games in lichess's database format (17 tags, ``{ [%clk 0:03:00] }`` after every
move, eval comments in one game in ten, ``?!``-style suffixes), about 2.5 kB a game, 500 different
random legal games repeated. Run:

    python -m pytest benchmarks/bench_data.py --benchmark-only -p no:cacheprovider -c /dev/null -s

Each test prints games/s (also in the benchmark's extra_info). On a busy machine, measure the
one-core figure in CPU time: add ``-k parse --benchmark-timer time.process_time``.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import chess.pgn
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import write_lichess_pgn  # noqa: E402

from transcend.data import GameFilter, prepare  # noqa: E402
from transcend.data.prepare import ChunkConfig, parse_chunk  # noqa: E402

N_GAMES = 20_000


@pytest.fixture(scope="module")
def lichess_file(tmp_path_factory) -> Path:
    return write_lichess_pgn(tmp_path_factory.mktemp("bench") / "lichess.pgn", N_GAMES, seed=0, distinct=500)


def report(benchmark, games: int, label: str) -> None:
    rate = games / benchmark.stats.stats.mean
    benchmark.extra_info["games_per_s"] = round(rate)
    print(f"\n{label}: {rate:,.0f} games/s")


FILTERS = {"no-filter": GameFilter(), "max-elo-1500": GameFilter(max_elo=1500)}


@pytest.mark.parametrize("name", FILTERS)
def test_parse_one_core(benchmark, lichess_file, name):
    """The per-core work alone (parse, filter, encode one in-memory chunk): what a worker does.
    With no filter every game is parsed; with the paper's kind of cap most are rejected by their tags."""
    data = lichess_file.read_bytes()
    config = ChunkConfig(FILTERS[name], 0.01, False)
    result = benchmark.pedantic(parse_chunk, (data, config), rounds=3, iterations=1)
    assert result.games_read == N_GAMES
    report(benchmark, N_GAMES, f"parse_chunk, one core, {name}")


@pytest.mark.parametrize("workers", [1, 2])
def test_prepare(benchmark, lichess_file, tmp_path, workers):
    """The whole command, every game parsed: read the file, parse, write train/val/index/meta.

    Also reported: the CPU time per game of the parent process (reading, cutting chunks, writing)
    and of the workers (parsing). With workers, the parent's share bounds the scaling: N workers
    go N times faster as long as N x (parent's time per game) stays below one worker's."""
    big = tmp_path / "big.pgn"
    big.write_bytes(lichess_file.read_bytes() * 5)  # 100,000 games, so that starting workers is amortized
    cpu = {}

    def run():
        parent, children = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        stats = prepare([str(big)], tmp_path / "out", progress=False, workers=workers)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu["parent"] = (time.process_time() - parent) / stats.games_read * 1e6
        cpu["workers"] = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) / stats.games_read * 1e6
        return stats

    stats = benchmark.pedantic(run, rounds=2, iterations=1)
    assert stats.games_read == 5 * N_GAMES
    benchmark.extra_info.update({f"cpu_us_per_game_{k}": round(v, 1) for k, v in cpu.items()})
    report(benchmark, 5 * N_GAMES, f"prepare --workers {workers} (CPU per game: parent {cpu['parent']:.1f} us, "
                                   f"workers {cpu['workers']:.1f} us)")


def test_prepare_validate(benchmark, lichess_file, tmp_path):
    """--validate: every game replayed by python-chess."""
    head = tmp_path / "head.pgn"
    with open(lichess_file, "rb") as f:
        head.write_bytes(f.read(2_500_000))  # about 1,000 games

    def run():
        return prepare([str(head)], tmp_path / "out", progress=False, validate=True)

    stats = benchmark.pedantic(run, rounds=1, iterations=1)
    report(benchmark, stats.games_read, "prepare --validate")


def test_python_chess_read_game(benchmark, lichess_file):
    """The baseline: chess.pgn.read_game on the same file (the first 1,000 games)."""
    def run():
        with open(lichess_file) as f:
            for _ in range(1000):
                chess.pgn.read_game(f)

    benchmark.pedantic(run, rounds=1, iterations=1)
    report(benchmark, 1000, "chess.pgn.read_game")
