"""transcend-uci in real games through python-chess's UCI client, against the real Stockfish, on a clock."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import chess
import chess.engine
import pytest

ENGINE = [sys.executable, "-m", "transcend.uci"]
INCREMENT = 0.01


def rss_mib(engine: chess.engine.SimpleEngine) -> float:
    """Resident memory of the engine's process."""
    status = Path(f"/proc/{engine.transport.get_pid()}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def play_game(ours: chess.engine.SimpleEngine, opponent: chess.engine.SimpleEngine, our_color: chess.Color,
              game: object, clock: float = 1.0, max_plies: int | None = None, ponder: bool = False,
              opponent_limit: chess.engine.Limit | None = None, options: dict | None = None) -> chess.Board:
    """One game on a clock of ``clock`` + 0.01 s a move for both sides, with the time really spent
    (python-chess and the pipe included) taken off; our engine must never run out of it."""
    board = chess.Board()
    clocks = {chess.WHITE: clock, chess.BLACK: clock}
    while not board.is_game_over(claim_draw=True) and (max_plies is None or len(board.move_stack) < max_plies):
        mover = board.turn
        limit = chess.engine.Limit(white_clock=clocks[chess.WHITE], black_clock=clocks[chess.BLACK],
                                   white_inc=INCREMENT, black_inc=INCREMENT)
        start = time.perf_counter()
        if mover == our_color:
            result = ours.play(board, limit, ponder=ponder, game=game, options=options or {})
        else:
            result = opponent.play(board, opponent_limit or limit, game=game)
        clocks[mover] -= time.perf_counter() - start
        if mover == our_color:
            assert clocks[mover] > 0, f"lost on time at ply {len(board.move_stack)}"
            assert result.move is not None and board.is_legal(result.move), (result.move, board.fen())
        clocks[mover] += INCREMENT
        board.push(result.move)
    return board


@pytest.fixture
def opponent(stockfish):
    engine = chess.engine.SimpleEngine.popen_uci(stockfish)
    engine.configure({"Skill Level": 0, "Threads": 1, "Hash": 16})
    yield engine
    engine.quit()


def test_full_games_against_stockfish_at_1s_plus_10ms_with_ponder(tiny_onnx, opponent, tmp_path):
    log = tmp_path / "engine.log"
    ours = chess.engine.SimpleEngine.popen_uci([*ENGINE, "--model", str(tiny_onnx), "--log-file", str(log)],
                                               timeout=20)
    try:
        for game, color in enumerate((chess.WHITE, chess.BLACK)):
            board = play_game(ours, opponent, color, game, ponder=True)
            assert board.outcome(claim_draw=True) is not None  # played to the end, no time loss
    finally:
        ours.quit()
    text = log.read_text()
    assert "< go ponder" in text  # it gave moves to ponder on, and pondered on them
    assert text.count("> bestmove") == text.count("< go ")


@pytest.mark.slow
def test_soak_200_short_games_no_crash_no_illegal_move_no_time_loss_flat_memory(tiny_onnx, stockfish):
    ours = chess.engine.SimpleEngine.popen_uci([*ENGINE, "--model", str(tiny_onnx)], timeout=20)
    opponent = chess.engine.SimpleEngine.popen_uci(stockfish)
    variants = [{"Temperature": "0"}, {"Temperature": "1", "TemperatureDecay": 8}, {"Sampling": "token", "Temperature": "0.5"},
                {"Sampling": "move", "Temperature": "0.001", "TopK": 4, "UCI_ShowWDL": True}]
    try:
        memory = []
        for game in range(200):
            board = play_game(ours, opponent, chess.WHITE if game % 2 else chess.BLACK, game, max_plies=16,
                              ponder=game % 3 == 0, opponent_limit=chess.engine.Limit(depth=1),
                              options=variants[game % len(variants)])
            assert board.move_stack
            if game in (19, 199):
                memory.append(rss_mib(ours))
        growth = memory[1] - memory[0]
        print(f"engine RSS after game 20: {memory[0]:.1f} MiB, after game 200: {memory[1]:.1f} MiB")
        assert growth < 10, f"memory grew by {growth:.1f} MiB over 180 games"
    finally:
        ours.quit()
        opponent.quit()
