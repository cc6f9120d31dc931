"""How often, and how fast, a FEN's move history is reconstructed (``transcend.inference.history``).

The 300 opening-book positions of ``tests/fixtures/book.epd`` (random openings of 3 to 8 moves a side,
with their move counters), each searched once with the engine's default bounds. Run (a few minutes):

    python -m pytest benchmarks/bench_policy_history.py --benchmark-only -p no:cacheprovider -c /dev/null -s

It prints the number of positions with a history found, and the median and slowest search.
"""

from __future__ import annotations

import time
from pathlib import Path

import chess
import numpy as np

from transcend.inference import history

BOOK = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "book.epd"


def test_book_reconstruction(benchmark):
    boards = [chess.Board.from_epd(line)[0] for line in BOOK.read_text().splitlines()]
    found, seconds = [], []

    def search_all():
        history._reconstruct.cache_clear()
        found.clear()
        seconds.clear()
        for board in boards:
            start = time.perf_counter()
            found.append(history.reconstruct_history(board) is not None)
            seconds.append(time.perf_counter() - start)

    benchmark.pedantic(search_all, rounds=1, iterations=1)
    benchmark.extra_info.update(positions=len(boards), found=sum(found), median_s=float(np.median(seconds)),
                                slowest_s=max(seconds))
    print(f"\n{sum(found)} of {len(boards)} histories found; median {np.median(seconds) * 1000:.0f} ms, "
          f"slowest {max(seconds):.1f} s")
