"""End to end: PGN -> dataset -> trained tiny model -> ONNX -> UCI engine playing Stockfish."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import chess
import chess.engine
import numpy as np
import pytest

from conftest import write_random_pgn
from transcend.transcript import GAME_START_ID, decode


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transcend.cli", *args], capture_output=True, text=True)


def test_prepare_filters_by_rating_on_both_players(tmp_path):
    pgn = write_random_pgn(tmp_path / "g.pgn", 60, seed=3)
    result = run_cli("data", "prepare", str(pgn), "--out", str(tmp_path / "d"), "--max-elo", "1200", "--quiet")
    assert result.returncode == 0, result.stderr
    import json

    meta = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert meta["games_read"] == 60
    assert meta["games_kept"] + meta["rejected"]["rating"] == 60
    ids = np.fromfile(tmp_path / "d" / "train.bin", dtype=np.uint8)
    assert ids[0] == GAME_START_ID
    games = decode(ids).split(";")[1:]
    assert all(g.startswith("1.") for g in games)


def test_training_lowers_the_loss(tiny_run):
    import json

    log = [json.loads(line) for line in (tiny_run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 300
    assert log[-1]["loss"] < log[0]["loss"] - 0.5
    assert "val_loss" in log[-1]


@pytest.mark.slow
def test_engine_plays_a_whole_legal_game_against_stockfish(tiny_onnx, stockfish):
    start = time.perf_counter()
    engine = chess.engine.SimpleEngine.popen_uci(
        ["transcend-uci", "--model", str(tiny_onnx), "--temperature", "0.001"], timeout=10
    )
    handshake = time.perf_counter() - start
    sf = chess.engine.SimpleEngine.popen_uci(stockfish)
    try:
        sf.configure({"Skill Level": 0})
        board = chess.Board()
        while not board.is_game_over(claim_draw=True) and len(board.move_stack) < 600:
            player = engine if board.turn == chess.WHITE else sf
            result = player.play(board, chess.engine.Limit(time=0.02))
            assert result.move is not None and board.is_legal(result.move), (result.move, board.fen())
            board.push(result.move)
        assert board.is_game_over(claim_draw=True)
        assert board.outcome(claim_draw=True) is not None
    finally:
        engine.quit()
        sf.quit()
    assert handshake < 2.0  # generous: the uciok itself is checked tighter in the UCI tests


def seconds_to_uciok(model: Path) -> float:
    proc = subprocess.Popen(["transcend-uci", "--model", str(model)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    start = time.perf_counter()
    proc.stdin.write("uci\n")
    proc.stdin.flush()
    while True:
        line = proc.stdout.readline()
        if line.strip() == "uciok" or not line:
            break
    elapsed = time.perf_counter() - start
    proc.stdin.write("quit\n")
    proc.stdin.close()
    proc.wait(5)
    assert line.strip() == "uciok"
    return elapsed


def test_uciok_within_half_a_second(tiny_onnx):
    # The best of three launches: the first launch on a fresh machine also pays for a cold disk cache,
    # which a GUI's engine launch does not see twice.
    elapsed = min(seconds_to_uciok(tiny_onnx) for _ in range(3))
    assert elapsed < 0.5, f"uciok after {elapsed:.2f}s"


def test_engine_never_imports_torch():
    code = ("import sys, transcend.uci.engine, transcend.uci.main, transcend.inference.policy, transcend.inference.runtime; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "prepare", "missing.pgn", "--out", "OUT"], "no such file"),
        (["data", "prepare", "EMPTY", "--out", "OUT"], "no games"),
        (["train", "--data", "OUT", "--out", "RUN", "--preset", "huge"], "unknown preset"),
        (["export", "NOWHERE", "-o", "x.onnx"], "no such file"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, args, message):
    (tmp_path / "empty.pgn").write_text("\n\n")
    args = [a.replace("EMPTY", str(tmp_path / "empty.pgn")).replace("OUT", str(tmp_path / "out"))
            .replace("RUN", str(tmp_path / "run")).replace("NOWHERE", str(tmp_path / "nowhere")) for a in args]
    if args[0] == "train":
        write_random_pgn(tmp_path / "g.pgn", 5)
        assert run_cli("data", "prepare", str(tmp_path / "g.pgn"), "--out", str(tmp_path / "out"), "--quiet").returncode == 0
    result = run_cli(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.parametrize("content", [b"not an onnx file at all", b"\x08\x07\x12\x04abcd"])
def test_engine_rejects_corrupt_or_foreign_onnx(tmp_path, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    proc = subprocess.run(["transcend-uci", "--model", str(bad)], input="uci\nisready\nposition startpos\ngo\nquit\n",
                          capture_output=True, text=True, timeout=20)
    assert "Traceback" not in proc.stderr
    assert "info string error" in proc.stdout
    assert "bestmove" in proc.stdout  # it still answers, with a legal fallback move
