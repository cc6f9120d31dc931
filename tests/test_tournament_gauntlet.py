"""Whole tournaments: the real model engine against real Stockfish and misbehaving UCI engines.

Games are kept short (node limits, a low move cap, a few games) so the file runs in well under a minute.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import chess.pgn
import pytest
from click.testing import CliRunner

from conftest import write_fake_engine
from transcend.cli import cli

TOURNAMENT = [sys.executable, "-m", "transcend.cli", "tournament"]


def _run(args: list[str]):
    return CliRunner().invoke(cli, ["tournament", *args], catch_exceptions=False)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "games.jsonl").read_text().splitlines()]


def _pgn_games(path: Path) -> list[chess.pgn.Game]:
    games = []
    with open(path) as f:
        while (game := chess.pgn.read_game(f)) is not None:
            games.append(game)
    return games


@pytest.mark.slow
def test_gauntlet_against_stockfish_writes_games_results_and_plot(tmp_path, tiny_onnx, stockfish):
    out = tmp_path / "t"
    result = _run(["--out", str(out), "--model", str(tiny_onnx), "--temperatures", "0.001,1.0",
                   "--stockfish-levels", "1", "--opponent", "random@900", "--games", "2", "--nodes", "50",
                   "--max-moves", "12", "--concurrency", "2", "--stockfish", stockfish, "--quiet"])
    assert result.exit_code == 0, result.output
    # the table
    assert "stockfish level 1" in result.output and "Glicko-2" in result.output

    records = _records(out)
    assert sorted(r["index"] for r in records) == list(range(8))
    assert all(r["random_moves"] == {"model": 0, "opponent": 0} for r in records)  # node limits: the model always answers
    games = _pgn_games(out / "games.pgn")
    assert len(games) == 8
    for game in games:
        h = game.headers
        model_white = h["White"].startswith("tiny T=")
        assert model_white == (int(h["Round"]) % 2 == 1)  # colours alternate, the model White first
        assert h["Temperature"] in ("0.001", "1") and h["Model"] == str(tiny_onnx.resolve())
        assert h["Termination"] in ("normal", "adjudication") and h["Reason"]
        assert f"Temperature={h['Temperature']}" in h["ModelOptions"]
        assert h["Limit"] == "nodes 50" and h["MoveCap"] == "12"
        assert h["Result"] in ("1-0", "0-1", "1/2-1/2")
        assert game.end().board().fullmove_number <= 13
    # the model without a value head reports no evaluation worth keeping; Stockfish does
    vs_stockfish = [r for r in records if r["opponent"] == "stockfish level 1"]
    for r in vs_stockfish:
        model_plies = r["scores"][0 if r["model_color"] == "white" else 1::2]
        stockfish_plies = r["scores"][1 if r["model_color"] == "white" else 0::2]
        assert all(s is None for s in model_plies)
        assert all(s is not None for s in stockfish_plies)

    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and results["games_played"] == 8
    assert results["anchors"] == {"stockfish level 1": 1552.0, "random": 900.0}
    for p in results["pairings"]:
        assert p["wins"] + p["draws"] + p["losses"] == p["games"] == 2
        assert p["score"] == sum(r["model_score"] for r in records if r["opponent"] == p["opponent"]
                                 and r["temperature"] == p["temperature"])
        assert p["model_faults"] == {"illegal_move": 0, "crash": 0, "time_loss": 0}
    for r in results["ratings"]:
        assert r["rated_games"] == 4
        assert 0 < r["glicko2"]["rd"] < 500 and r["glicko2"]["volatility"] > 0
        assert r["elo"]["low"] is None or r["elo"]["low"] < (r["elo"]["rating"] or r["elo"]["high"] or 1e9)
    assert (out / "ratings.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "mode, limit, kind, termination",
    [
        ("crash", ["--nodes", "10"], "crash", "abandoned"),
        ("illegal", ["--nodes", "10"], "illegal_move", "rules infraction"),
        ("slow", ["--tc", "0.4", "--time-margin", "0"], "time_loss", "time forfeit"),
    ],
)
def test_faulty_opponents_lose_and_are_counted(tmp_path, tiny_onnx, mode, limit, kind, termination):
    out = tmp_path / mode
    engine = write_fake_engine(tmp_path, mode)
    result = _run(["--out", str(out), "--model", str(tiny_onnx), "--temperatures", "1.0",
                   "--opponent", f"uci:{engine}", "--games", "2", *limit, "--quiet"])
    assert result.exit_code == 0, result.output
    records = _records(out)
    assert len(records) == 2
    for r in records:  # both games: the model wins, whatever its colour, and the fault is booked to the opponent
        assert r["model_score"] == 1.0
        assert r["fault"]["kind"] == kind and r["fault"]["player"] == "opponent"
        assert r["termination"] == termination
    (pairing,) = json.loads((out / "results.json").read_text())["pairings"]
    assert pairing["opponent_faults"][kind] == 2
    assert sum(pairing["model_faults"].values()) == 0
    assert [g.headers["Termination"] for g in _pgn_games(out / "games.pgn")] == [termination] * 2


def test_the_models_emergency_random_moves_are_counted(tmp_path, tiny_onnx):
    out = tmp_path / "bullet"
    # A 5 ms clock leaves the model almost no time: the engine answers most moves at random, and says so.
    result = _run(["--out", str(out), "--model", str(tiny_onnx), "--temperatures", "1.0", "--opponent", "random",
                   "--games", "2", "--tc", "0.005", "--time-margin", "5000", "--max-moves", "6", "--quiet"])
    assert result.exit_code == 0, result.output
    flagged = {}
    for game in _pgn_games(out / "games.pgn"):
        model_color = chess.WHITE if game.headers["White"].startswith("tiny") else chess.BLACK
        marks = [(not node.turn()) == model_color  # the side that made the move: the model?
                 for node in game.mainline() if "random move: no time for the model" in node.comment]
        assert all(marks)  # only the model's moves are ever flagged
        flagged[int(game.headers["GameIndex"])] = len(marks)
    records = _records(out)
    for r in records:
        assert r["random_moves"] == {"model": flagged[r["index"]], "opponent": 0}
    total = sum(flagged.values())
    assert total >= 3  # of 12 model moves; the engine says which ones it played at random
    summary = json.loads((out / "results.json").read_text())
    assert summary["random_moves"] == {"model": total, "opponent": 0}
    assert summary["pairings"][0]["model_random_moves"] == total
    assert f"warning: {total} of the model's moves were random emergency moves" in result.output


def _wait_for_games(path: Path, n: int, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        if process.poll() is not None:
            pytest.fail(f"the tournament ended early: {process.stderr.read()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no {n} games in {timeout} s")


@pytest.mark.slow
def test_interrupted_tournament_resumes_without_replaying_or_losing_games(tmp_path, tiny_onnx, stockfish):
    out = tmp_path / "r"
    args = ["--out", str(out), "--model", str(tiny_onnx), "--temperatures", "0.5", "--stockfish-levels", "1",
            "--games", "10", "--nodes", "20", "--max-moves", "15", "--stockfish", stockfish, "--seed", "4"]
    process = subprocess.Popen([*TOURNAMENT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_games(out / "games.jsonl", 2, process)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "continue with --resume" in err
    before = (out / "games.jsonl").read_text()
    kept = len(before.splitlines())
    assert 2 <= kept < 10
    partial = json.loads((out / "results.json").read_text())
    assert not partial["complete"] and partial["games_played"] == kept
    assert all(r["fault"] is None for r in _records(out))  # engines were not killed by the Ctrl-C

    # a crash in the middle of writing leaves a torn line: it is dropped, not fatal
    with open(out / "games.jsonl", "a") as f:
        f.write('{"index": 9, "mod')
    # starting again without --resume is refused: nothing would be overwritten
    refused = subprocess.run([*TOURNAMENT, *args], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "add --resume" in refused.stderr
    # resuming with other settings is refused too
    other = subprocess.run([*TOURNAMENT, *args, "--games", "12", "--resume"], capture_output=True, text=True,
                           timeout=60)
    assert other.returncode == 1 and "games: was 10, now 12" in other.stderr

    # --resume alone continues with the saved settings
    resumed = subprocess.run([*TOURNAMENT, "--out", str(out), "--resume", "--quiet"], capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    after = (out / "games.jsonl").read_text()
    assert after.startswith(before)  # finished games are untouched
    records = _records(out)
    assert sorted(r["index"] for r in records) == list(range(10))  # none lost, none played twice
    assert len(_pgn_games(out / "games.pgn")) == 10
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and results["pairings"][0]["games"] == 10


def test_paper_protocol_as_cutechess_and_fastchess_commands(tmp_path, tiny_onnx, stockfish):
    out = tmp_path / "p"
    result = _run(["--out", str(out), "--model", str(tiny_onnx), "--protocol", "paper", "--print-cutechess",
                   "--print-fastchess", "--stockfish", stockfish, "--concurrency", "3"])
    assert result.exit_code == 0, result.output
    commands = [shlex.split(line) for line in result.output.splitlines() if not line.startswith("#")]
    cutechess = [c for c in commands if c[0] == "cutechess-cli"]
    fastchess = [c for c in commands if c[0] == "fastchess"]
    assert len(cutechess) == len(fastchess) == 8  # one gauntlet per temperature of the paper
    for argv in cutechess + fastchess:
        engines = [i for i, a in enumerate(argv) if a == "-engine"]
        assert len(engines) == 4  # the model, then Stockfish at levels 1, 3, 5
        assert argv[argv.index("-tournament") + 1] == "gauntlet"
        assert argv[argv.index("-rounds") + 1] == "50" and argv[argv.index("-games") + 1] == "2"
        assert argv[argv.index("-maxmoves") + 1] == "90" and argv[argv.index("-concurrency") + 1] == "3"
        assert "st=0.1" in argv and "-openings" not in argv
        for level in (1, 3, 5):
            assert f"option.Skill Level={level}" in argv
    first = cutechess[0]
    engines = [i for i, a in enumerate(first) if a == "-engine"]
    model = first[engines[0] + 1: engines[1]]
    assert "cmd=transcend-uci" in model and "arg=--temperature" in model and "arg=0.001" in model
    assert "st=60" in model  # the model is not timed under the paper's protocol, Stockfish is
    assert any(a.startswith("args=") and "--temperature 0.001" in a for a in fastchess[0])
    assert not out.exists()  # printing plays nothing


def test_random_plies_are_written_as_a_book_for_cutechess(tmp_path, tiny_onnx, stockfish):
    out = tmp_path / "b"
    result = _run(["--out", str(out), "--model", str(tiny_onnx), "--temperatures", "1", "--opponent", "random",
                   "--opponent", "stockfish:skill=2,nodes=300", "--games", "6", "--random-plies", "4",
                   "--adjudicate-draw", "movenumber=30,movecount=6,score=5", "--print-cutechess"])
    assert result.exit_code == 0, result.output
    assert "# random: not a UCI engine" in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("cutechess-cli")]
    argv = shlex.split(line)
    assert f"file={out / 'openings.pgn'}" in argv and "format=pgn" in argv
    assert argv[argv.index("-draw") + 1: argv.index("-draw") + 4] == ["movenumber=30", "movecount=6", "score=5"]
    assert "nodes=300" in argv and "option.Skill Level=2" in argv
    openings = _pgn_games(out / "openings.pgn")
    assert len(openings) == 3 and all(len(list(g.mainline_moves())) == 4 for g in openings)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tc", "soon"], "--tc 'soon'"),
        (["--movetime", "100", "--nodes", "5"], "one of --movetime, --nodes and --tc"),
        (["--anchors", "1:1500"], "not LEVEL=ELO"),
        (["--opponent", "gnuchess"], "unknown expert"),
        (["--book", "missing.pgn"], "no such opening book"),
        (["--temperatures", "0.1,x"], "comma-separated list"),
        (["--temperatures", "-1"], "not a temperature"),
        (["--adjudicate-resign", "score=100"], "missing movecount"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, tiny_onnx, args, message):
    run = subprocess.run([*TOURNAMENT, "--out", str(tmp_path / "x"), "--model", str(tiny_onnx), *args],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode != 0
    assert message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_a_broken_model_is_a_clear_error_before_any_game(tmp_path, stockfish):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    run = subprocess.run([*TOURNAMENT, "--out", str(tmp_path / "x"), "--model", str(broken), "--nodes", "5",
                          "--stockfish", stockfish], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TRANSCEND_DEBUG": ""})
    assert run.returncode == 1
    assert run.stderr.startswith("transcend: error:") and "not a readable ONNX model" in run.stderr
