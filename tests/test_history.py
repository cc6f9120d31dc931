"""FEN -> plausible move history: the bounded search behind FEN positions."""

from __future__ import annotations

import time
from pathlib import Path

import chess
import pytest

from transcend.inference.history import position_key, reconstruct_history

BOOK = Path(__file__).parent / "fixtures" / "book.epd"


def replay(moves: list[chess.Move]) -> chess.Board:
    board = chess.Board()
    for move in moves:
        assert board.is_legal(move)
        board.push(move)
    return board


def test_the_standard_start_is_the_start():
    assert reconstruct_history(chess.STARTING_FEN) == []
    assert reconstruct_history(chess.Board()) == []


def test_a_real_opening_is_found_with_its_move_counters():
    board = chess.Board()
    for san in "e4 c5 Nf3 d6 d4 cxd4 Nxd4 Nf6 Nc3 a6".split():
        board.push_san(san)
    moves = reconstruct_history(board.fen())
    assert moves is not None and len(moves) == 10
    end = replay(moves)
    assert position_key(end) == position_key(board) and end.halfmove_clock == board.halfmove_clock


def test_the_halfmove_clock_decides_the_move_order():
    # The start position, White to move, after 4 plies without a capture or pawn move: knights out and back.
    moves = reconstruct_history("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 4 3")
    assert moves is not None and len(moves) == 4
    assert replay(moves).board_fen() == chess.Board().board_fen()
    # 1.e4 e5 2.Nf3 with a clock of 1: the knight move came last.
    moves = reconstruct_history("rnbqkbnr/pppp1ppp/8/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R b KQkq - 1 2")
    assert moves is not None and chess.square_name(moves[-1].to_square) == "f3"


def test_missing_counters_as_in_epd_books_are_searched_around():
    board = chess.Board()
    for san in "d4 d5 c4 e6 Nc3 Nf6 Bg5".split():
        board.push_san(san)
    epd_style = board.fen().rsplit(" ", 2)[0] + " 0 1"  # what a runner sends for an EPD without counters
    moves = reconstruct_history(epd_style)
    assert moves is not None and position_key(replay(moves)) == position_key(board)


@pytest.mark.parametrize("fen", [
    "8/8/4k3/8/8/2K5/8/7R b - - 10 50",  # an endgame
    "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR b KQkq - 0 1",  # the start with Black to move
    "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w - - 0 1",  # the start without castling rights
    "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKQNR w KQkq - 0 1",  # two white queens
])
def test_unreachable_positions_give_none(fen):
    assert reconstruct_history(fen, node_budget=500) is None


def test_book_positions_are_mostly_reconstructed():
    lines = BOOK.read_text().splitlines()[:30]
    found = 0
    for line in lines:
        board, _ = chess.Board.from_epd(line)
        moves = reconstruct_history(board)
        if moves is not None:
            found += 1
            assert position_key(replay(moves)) == position_key(board)
            assert len(moves) == 2 * (board.fullmove_number - 1) + (board.turn == chess.BLACK)
    assert found >= 0.9 * len(lines)


def test_a_deadline_stops_a_failing_search_long_before_its_node_budget():
    hard = "2bq2n1/2Bp1k2/r4p2/P3p1pr/PnP1P3/3P1PQ1/4N1PP/1N2KB1R w K - 0 1"  # 40 random plies, no counters
    start = time.perf_counter()
    assert reconstruct_history(hard, seconds=0.05) is None
    assert time.perf_counter() - start < 0.5  # the whole budget takes about 2 s
    found = reconstruct_history("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3", seconds=5.0)
    assert found is not None and len(found) == 4
