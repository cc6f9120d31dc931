"""`transcend reproduce --scale smoke`: the whole experiment end to end, then again with nothing to do."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from transcend.inference.runtime import OnnxModel
from transcend.reproduce import SCALES, anchor_elo


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transcend.cli", *args], capture_output=True, text=True)


@pytest.mark.slow
def test_smoke_reproduction_runs_every_stage_then_skips_them(tmp_path, stockfish):
    out = tmp_path / "smoke"
    first = cli("reproduce", str(out), "--scale", "smoke")
    assert first.returncode == 0, first.stderr
    scale = SCALES["smoke"]

    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and results["games_played"] == len(scale.temperatures) * 3 * scale.tournament_games
    opponents = {p["opponent"] for p in results["pairings"]}
    assert opponents == {*scale.experts, "random"}
    anchors = json.loads((out / "anchors" / "anchors.json").read_text())
    assert set(anchors) == set(scale.experts) and results["anchors"]["random"] == 0
    assert (out / "ratings.png").stat().st_size > 0
    card = OnnxModel(out / "model.onnx", provider="cpu").info.card
    assert card["data"]["experts"] == list(scale.experts)
    assert card["training"]["steps"] == scale.training["max_iters"]

    journal = (out / "games.jsonl").read_text()
    again = cli("reproduce", str(out), "--scale", "smoke")
    assert again.returncode == 0, again.stderr
    for line in ("data: ", "train: ", "export: "):
        stage = next(x for x in again.stdout.splitlines() if x.startswith(line))
        assert "complete" in stage or "up to date" in stage, stage
    assert (out / "games.jsonl").read_text() == journal  # no game played twice


def test_reproduce_refuses_bad_requests(tmp_path):
    paper = cli("reproduce", str(tmp_path / "p"), "--scale", "paper")
    assert paper.returncode == 1 and "--pgn" in paper.stderr and "Traceback" not in paper.stderr
    (tmp_path / "g.pgn").write_text('[Event "x"]\n\n1. e4 e5 *\n')
    no_cap = cli("reproduce", str(tmp_path / "c"), "--pgn", str(tmp_path / "g.pgn"))
    assert no_cap.returncode == 1 and "--max-elo" in no_cap.stderr
    missing = cli("reproduce", str(tmp_path / "m"), "--pgn", str(tmp_path / "none.pgn"), "--max-elo", "1000")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_anchor_elo_is_finite_and_ordered():
    assert anchor_elo(100, 0, 100) == 0.0
    assert anchor_elo(200, 0, 0) == pytest.approx(1041.3, abs=0.1)
    assert anchor_elo(150, 40, 10) > anchor_elo(120, 40, 40) > 0
