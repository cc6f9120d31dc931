"""transcend-uci's own costs, over a real pipe: launch to ``uciok``, launch to ``readyok`` (the model
loaded), and one ``position ... go`` to ``bestmove`` round trip in a continuing game with the bundled
model (the protocol, the threads and the model evaluation together).

    python -m pytest benchmarks/bench_uci.py --benchmark-only -p no:cacheprovider -c /dev/null
"""

from __future__ import annotations

import subprocess
import sys

import pytest

ENGINE = [sys.executable, "-m", "transcend.uci"]
GAME = "e2e4 e7e5 g1f3 b8c6 f1b5 a7a6 b5a4 g8f6 e1g1 f8e7 f1e1 b7b5 a4b3 d7d6 c2c3 e8g8".split()


@pytest.mark.parametrize("answer", ["uciok", "readyok"])
def test_launch_to_answer(benchmark, answer):
    running: list[subprocess.Popen] = []

    def reap() -> None:  # outside the timing: the last round's process
        for proc in running:
            proc.kill()
            proc.wait()
        running.clear()

    def launch() -> None:
        proc = subprocess.Popen(ENGINE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        running.append(proc)
        proc.stdin.write("uci\n" + ("isready\n" if answer == "readyok" else ""))
        proc.stdin.flush()
        while proc.stdout.readline().strip() != answer:
            pass

    benchmark.pedantic(launch, setup=reap, rounds=10, iterations=1)
    reap()


@pytest.fixture(scope="module")
def engine():
    proc = subprocess.Popen(ENGINE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    proc.stdin.write("uci\nisready\n")
    proc.stdin.flush()
    while proc.stdout.readline().strip() != "readyok":
        pass
    yield proc
    proc.stdin.write("quit\n")
    proc.stdin.close()
    proc.wait()


def test_go_to_bestmove_in_a_continuing_game(benchmark, engine):
    plies = iter(range(10**9))

    def one_move() -> None:
        ply = next(plies) % len(GAME)
        engine.stdin.write(f"position startpos moves {' '.join(GAME[:ply])}\ngo wtime 60000 btime 60000\n")
        engine.stdin.flush()
        while not engine.stdout.readline().startswith("bestmove"):
            pass

    benchmark.pedantic(one_move, rounds=64, iterations=1, warmup_rounds=4)
