"""data synth: real Stockfish and random experts, round robin, determinism, resuming a killed run."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chess
import chess.pgn
import pytest

from conftest import write_fake_engine
from transcend.data import GameFilter, prepare
from transcend.data.synth import SynthConfig, SynthError, pairing_scores, synth


def read_games(path: Path) -> list[chess.pgn.Game]:
    games = []
    with open(path) as f:
        while (game := chess.pgn.read_game(f)) is not None:
            assert not game.errors, game.errors
            games.append(game)
    return games


def synth_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transcend.cli", "data", "synth", *args, "--quiet"],
                          capture_output=True, text=True, **kwargs)


def test_round_robin_with_colours_ratings_and_results_by_the_rules(tmp_path, stockfish):
    experts = ("random", "stockfish:nodes=30", "eps=0.5+stockfish:depth=1")
    config = SynthConfig(experts, games=6, seed=1, elos={"random": 400, "eps=0.5+stockfish:depth=1": 900},
                         random_plies=2, max_plies=80, stockfish=stockfish)
    report = synth(config, tmp_path / "g.pgn", progress=False)
    assert (report.played, report.total) == (6, 6)
    games = read_games(tmp_path / "g.pgn")
    pairs = [(g.headers["White"], g.headers["Black"]) for g in games]
    assert pairs == [(experts[0], experts[1]), (experts[1], experts[0]), (experts[0], experts[2]),
                     (experts[2], experts[0]), (experts[1], experts[2]), (experts[2], experts[1])]
    for number, game in enumerate(games, 1):
        h = game.headers
        assert h["Round"] == str(number)
        assert h.get("WhiteElo") == {"random": "400", experts[2]: "900"}.get(h["White"])
        assert h.get("BlackElo") == {"random": "400", experts[2]: "900"}.get(h["Black"])
        board = game.end().board()
        if h["Termination"] == "Adjudication":
            assert board.ply() == 80 and h["Result"] == "1/2-1/2"
            continue
        assert h["Termination"] == "Normal"
        outcome = board.outcome(claim_draw=False)
        if outcome is None:  # ended at once by threefold repetition or the fifty-move rule, as lichess does
            assert board.is_repetition(3) or board.halfmove_clock >= 100
            assert h["Result"] == "1/2-1/2"
        else:
            assert h["Result"] == outcome.result()
    # the file is ordinary PGN for `data prepare`: only random vs eps games have both ratings <= 1000
    prepare([str(tmp_path / "g.pgn")], tmp_path / "d", GameFilter(max_elo=1000), progress=False)
    assert (tmp_path / "d" / "meta.json").exists()
    stats = prepare([str(tmp_path / "g.pgn")], tmp_path / "d", GameFilter(max_elo=1000), progress=False)
    assert stats.games_kept == 2 and dict(stats.rejected) == {"missing_rating": 4}


def test_games_depend_on_seed_and_number_only(tmp_path, stockfish):
    config = SynthConfig(("stockfish:nodes=40",), games=4, seed=7, random_plies=4, stockfish=stockfish)
    synth(config, tmp_path / "one.pgn", workers=1, progress=False)
    synth(config, tmp_path / "two.pgn", workers=2, progress=False)
    one = (tmp_path / "one.pgn").read_text()
    assert one == (tmp_path / "two.pgn").read_text()
    games = read_games(tmp_path / "one.pgn")
    assert len({str(g.mainline_moves()) for g in games}) == 4  # random openings make them differ
    other = SynthConfig(("stockfish:nodes=40",), games=4, seed=8, random_plies=4, stockfish=stockfish)
    synth(other, tmp_path / "other.pgn", progress=False)
    assert (tmp_path / "other.pgn").read_text() != one


def count_games(path: Path) -> int:
    return path.read_bytes().count(b'[Event "') if path.exists() else 0


@pytest.mark.slow
def test_a_killed_run_continues_to_the_same_file(tmp_path, stockfish):
    args = ["--games", "24", "--expert", "stockfish:nodes=60", "--expert", "random", "--random-plies", "2",
            "--seed", "3", "--elo", "random=400", "--stockfish", stockfish]
    reference = tmp_path / "reference.pgn"
    assert synth_cli("--out", str(reference), *args).returncode == 0
    out = tmp_path / "killed.pgn"
    proc = subprocess.Popen([sys.executable, "-m", "transcend.cli", "data", "synth", "--out", str(out), *args,
                             "--workers", "2", "--quiet"], start_new_session=True)
    deadline = time.monotonic() + 60
    while count_games(out) < 3:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, all at once
    proc.wait()
    assert 3 <= count_games(out) < 24
    result = synth_cli("--out", str(out), *args)
    assert result.returncode == 0, result.stderr
    assert "games/s" in result.stdout and "holds 24 games" in result.stdout
    assert out.read_bytes() == reference.read_bytes()


def test_a_partial_last_game_is_replayed(tmp_path, stockfish):
    config = SynthConfig(("stockfish:nodes=30", "random"), games=3, random_plies=2, stockfish=stockfish)
    synth(config, tmp_path / "ref.pgn", progress=False)
    text = (tmp_path / "ref.pgn").read_bytes()
    third = text.index(b'[Event "', text.index(b'[Event "', 1) + 1)
    for cut in (third + 5, len(text) - 3):  # inside the tags, and inside the movetext
        (tmp_path / "g.pgn").write_bytes(text[:cut])
        report = synth(config, tmp_path / "g.pgn", progress=False)
        assert (report.played, report.total) == (1, 3)
        assert (tmp_path / "g.pgn").read_bytes() == text
    assert synth(config, tmp_path / "g.pgn", progress=False).played == 0  # already complete


def test_a_file_with_other_settings_is_refused(tmp_path, stockfish):
    config = SynthConfig(("random",), games=2, seed=0)
    synth(config, tmp_path / "g.pgn", progress=False)
    with pytest.raises(SynthError, match="written with other settings"):
        synth(SynthConfig(("random",), games=4, seed=1), tmp_path / "g.pgn", progress=False)
    (tmp_path / "lichess.pgn").write_text('[Event "Rated Blitz game"]\n\n1. e4 e5 1-0\n\n')
    with pytest.raises(SynthError, match="written with other settings"):
        synth(config, tmp_path / "lichess.pgn", progress=False)
    (tmp_path / "text.pgn").write_text("not a pgn\n")
    with pytest.raises(SynthError, match="not a PGN file written by"):
        synth(config, tmp_path / "text.pgn", progress=False)


@pytest.mark.parametrize("args, message", [
    (["--expert", "random", "--elo", "stockfish=1500"], "--elo names 'stockfish', which is not one of the --expert"),
    (["--expert", "random", "--elo", "random"], "use SPEC=RATING"),
    (["--expert", "gnuchess"], "unknown expert 'gnuchess'"),
    (["--expert", "random", "--expert", "random"], "expert 'random' is given twice"),
    (["--expert", "stockfish:nodes=10", "--stockfish", "/nonexistent/stockfish"], "no such Stockfish binary"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, args, message):
    result = synth_cli("--out", str(tmp_path / "g.pgn"), "--games", "2", *args)
    assert result.returncode == 1
    assert result.stderr.startswith("transcend: error: ") and message in result.stderr, result.stderr
    assert not (tmp_path / "g.pgn").exists()


def test_a_stockfish_that_dies_mid_game_is_a_one_line_error(tmp_path):
    engine = write_fake_engine(tmp_path, "crash")  # it dies at its second search
    result = synth_cli("--out", str(tmp_path / "g.pgn"), "--games", "2", "--expert", "stockfish:nodes=10",
                       "--expert", "random", "--stockfish", str(engine), timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("transcend: error: game 1: stockfish:nodes=10 "
                                                                      "failed:"), result.stderr
    assert "exited" in result.stderr


def test_self_play_elo_and_cap_from_the_cli(tmp_path):
    result = synth_cli("--out", str(tmp_path / "g.pgn"), "--games", "3", "--expert", "random",
                       "--elo", "random=350", "--max-plies", "12")
    assert result.returncode == 0, result.stderr
    games = read_games(tmp_path / "g.pgn")
    assert [(g.headers["White"], g.headers["WhiteElo"], g.headers["BlackElo"]) for g in games] == [("random", "350", "350")] * 3
    assert all(g.end().board().ply() <= 12 for g in games)
    assert io.StringIO(result.stdout).read().startswith("played 3 games")


def test_pairing_scores_count_every_game_from_the_first_experts_side(tmp_path, stockfish):
    experts = ("stockfish:nodes=50", "random")
    done = synth_cli("--out", str(tmp_path / "g.pgn"), "--games", "8", "--expert", experts[0], "--expert", experts[1],
                     "--max-plies", "60")
    assert done.returncode == 0, done.stderr
    (score,) = pairing_scores(tmp_path / "g.pgn", experts)
    games = read_games(tmp_path / "g.pgn")
    points = {"1-0": 1.0, "0-1": 0.0, "1/2-1/2": 0.5}
    expected = sum(points[g.headers["Result"]] if g.headers["White"] == experts[0] else 1 - points[g.headers["Result"]]
                   for g in games)
    assert (score.first, score.second, score.games) == (*experts, 8)
    assert score.wins + 0.5 * score.draws == expected
    assert f"{experts[0]} vs random: +{score.wins} ={score.draws} -{score.losses}" in done.stdout
