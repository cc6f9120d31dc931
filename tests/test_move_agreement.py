"""scripts/move_agreement.py: the smooth strength measures of docs/scaling.md, on a real export."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import chess
import chess.engine
import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "move_agreement.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("move_agreement", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validation_games_are_the_prepared_games(script, tiny_run):
    games = script.validation_games(str(tiny_run.parent / "data"))
    assert games
    for sans in games:
        script.board_after(sans)  # every game replays legally


def test_measures_are_probabilities_and_follow_the_seed(script, tiny_onnx, tiny_run, stockfish, capsys):
    data = str(tiny_run.parent / "data")
    outputs = []
    for seed in (3, 3, 4):
        assert script.main([str(tiny_onnx), data, "12", "--seed", str(seed), "--stockfish", stockfish]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1]
    first = outputs[0]
    assert first["positions"] == 12
    for key in ("legal_mass", "top1_stockfish", "p_stockfish", "top1_random_mover"):
        assert 0.0 <= first[key] <= 1.0
    assert first["p_stockfish"] <= first["legal_mass"]


def test_chance_level_is_one_over_the_legal_moves(script, tiny_onnx, tiny_run, stockfish):
    """With one game of one position the chance level is exactly 1 / its number of legal moves."""
    from transcend.inference.policy import MovePolicy
    from transcend.inference.runtime import OnnxModel

    games = [["e4"]]  # the only position drawn is the start (a game's end is never drawn)
    engine = chess.engine.SimpleEngine.popen_uci(stockfish)
    try:
        out = script.agreement(MovePolicy(OnnxModel(tiny_onnx, provider="cpu")), engine, games, 3,
                               np.random.default_rng(0))
    finally:
        engine.quit()
    assert out["top1_random_mover"] == round(1 / 20, 4)


def test_bad_input_is_one_line(tmp_path, tiny_onnx):
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tiny_onnx), str(tmp_path), "5"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "not a prepared dataset" in proc.stderr
