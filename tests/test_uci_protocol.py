"""transcend-uci, spoken to line by line over a real pipe: the protocol, the options, bad input, fuzzing."""

from __future__ import annotations

import queue
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import chess
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transcend.inference.policy import MovePolicy
from transcend.inference.runtime import OnnxModel
from transcend.uci.scores import cp_from_wdl, wdl_permille
from transcend.uci.engine import UciEngine

ENGINE = [sys.executable, "-m", "transcend.uci"]
FOOLS_MATE = "rnb1kbnr/pppp1ppp/8/4p3/6Pq/5P2/PPPPP2P/RNBQKBNR w KQkq - 1 3"
TIMEOUT = 30.0


class Uci:
    """A transcend-uci process, and the lines it has written so far."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([*ENGINE, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        self.lines.put(None)

    def send(self, *lines: str | bytes) -> None:
        for line in lines:
            self.proc.stdin.write((line.encode() if isinstance(line, str) else line) + b"\n")
        self.proc.stdin.flush()

    def read_until(self, done, timeout: float = TIMEOUT) -> list[str]:
        """Lines up to and including the first for which ``done(line)`` is true."""
        seen: list[str] = []
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(end - time.monotonic(), 0.001))
            except queue.Empty:
                raise AssertionError(f"no answer in {timeout} s; got {seen[-20:]}") from None
            if line is None:
                raise AssertionError(f"the engine exited ({self.proc.poll()}); got {seen[-20:]}")
            seen.append(line)
            if done(line):
                return seen

    def sync(self) -> list[str]:
        """isready, and everything written up to readyok."""
        self.send("isready")
        return self.read_until(lambda line: line == "readyok")

    def bestmove(self) -> tuple[list[str], str, str | None]:
        """The lines up to the next bestmove, its move and its ponder move."""
        lines = self.read_until(lambda line: line.startswith("bestmove"))
        words = lines[-1].split()
        return lines, words[1], words[3] if len(words) > 3 and words[2] == "ponder" else None

    def play(self, position: str, go: str = "go movetime 1000") -> tuple[list[str], str, str | None]:
        self.send(position, go)
        return self.bestmove()

    def quit(self) -> int:
        try:
            self.send("quit")
        except OSError:
            pass
        code = self.proc.wait(TIMEOUT)
        stderr = self.proc.stderr.read().decode(errors="replace")
        assert "Traceback" not in stderr, stderr
        return code


@pytest.fixture
def uci(tiny_onnx):
    engines = []

    def start(*args: str) -> Uci:
        engine = Uci("--model", str(tiny_onnx), *args)
        engines.append(engine)
        return engine

    yield start
    for engine in engines:
        if engine.proc.poll() is None:
            engine.proc.kill()
            engine.proc.wait()


@pytest.fixture(scope="module")
def shared(tiny_onnx):
    """One engine for a whole series of inputs: each must leave it in a sane state for the next."""
    engine = Uci("--model", str(tiny_onnx))
    engine.send("uci")
    engine.read_until(lambda line: line == "uciok")
    engine.sync()
    yield engine
    assert engine.quit() == 0


@pytest.fixture(scope="module")
def policy(tiny_onnx) -> MovePolicy:
    return MovePolicy(OnnxModel(tiny_onnx, provider="cpu"))


def board_after(position: str) -> chess.Board:
    """The board of a well-formed ``position`` command."""
    words = position.split()
    end = words.index("moves") if "moves" in words else len(words)
    board = chess.Board() if words[1] == "startpos" else chess.Board(" ".join(words[2:end]))
    for uci in words[end + 1 :]:
        board.push_uci(uci)
    return board


def info_strings(lines: list[str]) -> list[str]:
    return [line[len("info string "):] for line in lines if line.startswith("info string ")]


def probabilities(lines: list[str]) -> dict[str, float]:
    """The moves and probabilities of the 'most probable moves' info string."""
    listing = next(s for s in info_strings(lines) if s.startswith("most probable moves:"))
    return {m: float(p) / 100 for m, p in re.findall(r"\d+\. (\w+) ([\d.]+)%", listing)}


# ---------------------------------------------------------------------------------------------------
# The protocol


def test_handshake_options_and_lichess_bot_defaults_through_python_chess(tiny_onnx, caplog):
    import chess.engine

    engine = chess.engine.SimpleEngine.popen_uci([*ENGINE, "--model", str(tiny_onnx)], timeout=20)
    try:
        assert engine.id["name"].startswith("transcend")
        assert engine.id["author"]
        options = engine.options
        for name in ("Temperature", "TemperatureDecay", "TemperatureFloor", "Sampling", "TopK", "Seed", "MultiPV",
                     "Model", "Provider", "Threads", "LogFile", "Move Overhead", "Hash", "SyzygyPath",
                     "UCI_ShowWDL", "Ponder"):
            assert name in options, name
        assert options["Temperature"].type == "string" and options["Temperature"].default == "0.001"
        assert options["Sampling"].var == ["move", "token"]
        # lichess-bot's default uci_options, unedited
        engine.configure({"Move Overhead": 100, "Threads": 4, "Hash": 512, "SyzygyPath": "./syzygy/",
                          "UCI_ShowWDL": True})
        board = chess.Board()
        result = engine.play(board, chess.engine.Limit(white_clock=60, black_clock=60, white_inc=1, black_inc=1),
                             info=chess.engine.INFO_ALL)
        assert board.is_legal(result.move)
        assert result.info["depth"] == 1 and result.info["nodes"] == 20 and "score" in result.info
        assert result.info["pv"][0] == result.move
    finally:
        engine.quit()
    complaints = [r.getMessage() for r in caplog.records if r.name.startswith("chess") and r.levelname != "DEBUG"]
    assert not complaints  # python-chess found nothing unexpected in what the engine said


def test_isready_is_answered_while_an_infinite_search_waits_for_stop(uci):
    engine = uci()
    engine.send("position startpos moves e2e4", "go infinite")
    time.sleep(0.3)
    for _ in range(3):
        assert not any(line.startswith("bestmove") for line in engine.sync())
    engine.send("stop")
    lines, move, _ = engine.bestmove()
    assert board_after("position startpos moves e2e4").is_legal(chess.Move.from_uci(move))
    assert any(line.startswith("info depth 1") and " pv " in line for line in lines)
    assert not any(line.startswith("bestmove") for line in engine.sync())  # exactly one answer
    assert engine.quit() == 0


def test_go_ponder_waits_for_ponderhit_or_stop(uci):
    engine = uci()
    engine.send("setoption name Ponder value true")
    position = "position startpos moves d2d4 d7d5"
    engine.send(position, "go ponder wtime 5000 btime 5000")
    time.sleep(0.2)
    assert not any(line.startswith("bestmove") for line in engine.sync())
    engine.send("ponderhit")
    _, move, reply = engine.bestmove()
    board = board_after(position)
    board.push_uci(move)
    assert reply is not None and board.is_legal(chess.Move.from_uci(reply))  # Ponder on: a move to ponder on
    engine.send(position, "go ponder wtime 5000 btime 5000")
    assert not any(line.startswith("bestmove") for line in engine.sync())
    engine.send("stop")
    _, move, _ = engine.bestmove()
    assert board_after(position).is_legal(chess.Move.from_uci(move))
    engine.send("ponderhit", "stop")  # nothing left to hit or stop: ignored
    assert not any(line.startswith("bestmove") for line in engine.sync())
    assert engine.quit() == 0


def test_no_legal_move_answers_0000(uci):
    engine = uci()
    lines, move, _ = engine.play(f"position fen {FOOLS_MATE}", "go wtime 1000 btime 1000")
    assert move == "0000" and any("score mate 0" in line for line in lines)
    lines, move, _ = engine.play("position fen 7k/5Q2/6K1/8/8/8/8/8 b - - 0 1", "go depth 3")  # stalemate
    assert move == "0000" and any("score cp 0" in line for line in lines)
    engine.send(f"position fen {FOOLS_MATE}", "go infinite")
    assert not any(line.startswith("bestmove") for line in engine.sync())
    engine.send("stop")
    assert engine.bestmove()[1] == "0000"
    assert engine.quit() == 0


@pytest.mark.parametrize("go", [
    "go wtime 1000 btime 1000", "go wtime 300000 btime 300000 winc 2000 binc 2000 movestogo 40",
    "go btime 50 wtime 10", "go depth 1", "go nodes 10", "go mate 2", "go movetime 30", "go",
    "go depth x movetime 200 junk",
])
def test_every_go_form_answers_a_legal_move(shared, go):
    position = "position startpos moves e2e4 c7c5 g1f3"
    shared.sync()
    lines, move, _ = shared.play(position, go)
    assert board_after(position).is_legal(chess.Move.from_uci(move))
    stats = next(line for line in lines if line.startswith("info depth"))
    for field in ("depth", "seldepth", "nodes", "time", "score", "pv"):
        assert f" {field} " in stats, (field, stats)


HARD_FEN = "2bq2n1/2Bp1k2/r4p2/P3p1pr/PnP1P3/3P1PQ1/4N1PP/1N2KB1R w K - 0 1"
"""40 random plies, sent without move counters: the history search fails after about 2 s."""


def test_a_fen_whose_history_takes_too_long_is_played_from_the_fallback_in_time(uci):
    engine = uci()
    engine.send("debug on", "ucinewgame", f"position fen {HARD_FEN}")
    engine.sync()
    lines, move, _ = engine.play(f"position fen {HARD_FEN}", "go wtime 1000 btime 1000")
    assert chess.Board(HARD_FEN).is_legal(chess.Move.from_uci(move))
    assert not any("random legal move" in line for line in lines), lines  # the model answered, in time
    assert any(line.endswith("prompt (last 200 symbols): ;1.") for line in lines), lines
    # The game keeps its transcript: the next move continues the fallback, no late history appears.
    board = chess.Board(HARD_FEN)
    board.push_uci(move)
    reply = next(iter(board.legal_moves))
    lines, move, _ = engine.play(f"position fen {HARD_FEN} moves {move} {reply.uci()}", "go wtime 60000 btime 60000")
    assert any("prompt (last 200 symbols): ;1." in line for line in lines), lines
    assert engine.quit() == 0


@pytest.mark.slow
def test_every_book_position_on_a_bullet_clock_gets_the_models_move(uci):
    """Tournament runners send each EPD book opening as a FEN: at 1 s + 0.01 s the history search must
    neither make the first move late nor leave it to chance (the first build did, in 177 of 300)."""
    engine = uci()  # one engine for the whole book, as in a tournament
    engine.sync()
    book = Path(__file__).parent / "fixtures" / "book.epd"
    for line in book.read_text().splitlines():
        board, _ = chess.Board.from_epd(line)
        engine.send("ucinewgame")
        engine.sync()
        lines, move, _ = engine.play(f"position fen {board.fen()}", "go wtime 1000 btime 1000 winc 10 binc 10")
        assert board.is_legal(chess.Move.from_uci(move))
        assert not any("random legal move" in text for text in lines), (board.fen(), lines)
    assert engine.quit() == 0


def test_the_steps_of_fastchess_compliance_check(uci):
    """fastchess --compliance: answers, and a last 'info depth ... score' line before each bestmove."""
    engine = uci()
    engine.send("uci")
    assert "uciok" in engine.read_until(lambda line: line == "uciok")
    engine.sync()
    engine.send("ucinewgame")
    engine.sync()
    steps = [("position fen 3r2k1/p5n1/1pq1p2p/2p3p1/2P1P1n1/1P1P2pP/PN1Q2K1/5R2 w - - 0 27", "go wtime 100"),
             ("position fen rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1", "go btime 100"),
             ("position startpos moves e2e4", "go wtime 100 winc 100 btime 100 binc 100"),
             ("position startpos moves e2e4", "go btime 100 binc 100 wtime 100 winc 100"),
             ("ucinewgame", "position startpos"), ("position startpos", "go wtime 100 btime 100"),
             ("position startpos moves e2e4 e7e5", "go wtime 100 btime 100")]
    for position, go in steps:
        engine.send(position)
        engine.sync()
        if not go.startswith("go"):
            engine.send(go)
            continue
        lines, move, _ = engine.play(position, go)
        scored = [line for line in lines if line.startswith("info depth") and " score " in line]
        assert scored and board_after(position).is_legal(chess.Move.from_uci(move)), lines
    assert engine.quit() == 0


def test_searchmoves_limits_the_choice(shared):
    shared.send("setoption name Temperature value 5")
    try:
        for _ in range(5):
            _, move, _ = shared.play("position startpos", "go searchmoves a2a3 h2h3 zz9 e7e5")
            assert move in ("a2a3", "h2h3")
    finally:
        shared.send("setoption name Temperature value 0.001")


def test_go_while_searching_answers_each_go_once(uci):
    engine = uci()
    engine.send("position startpos", "go infinite", "position startpos moves e2e4", "go movetime 100")
    _, first, _ = engine.bestmove()
    lines, second, _ = engine.bestmove()
    assert chess.Board().is_legal(chess.Move.from_uci(first))
    assert board_after("position startpos moves e2e4").is_legal(chess.Move.from_uci(second))
    assert not any(line.startswith("bestmove") for line in engine.sync())
    assert engine.quit() == 0


def test_quit_stops_a_search_which_still_answers(uci):
    engine = uci()
    engine.send("position startpos", "go infinite")
    engine.sync()
    engine.send("quit")
    assert engine.read_until(lambda line: line.startswith("bestmove"))
    assert engine.proc.wait(TIMEOUT) == 0


def test_the_engine_never_imports_torch_even_while_playing(tiny_onnx):
    code = f"""
import io, sys
from transcend.uci.protocol import Output
from transcend.uci.engine import UciEngine
from transcend.uci.options import Settings
out = io.BytesIO()
engine = UciEngine(Settings(model={str(tiny_onnx)!r}, sampling="token", multipv=2), Output(out, sys.exit))
engine.run(io.BytesIO(b"uci\\nisready\\nposition startpos moves e2e4\\ngo depth 1\\n"))
assert b"bestmove" in out.getvalue(), out.getvalue()
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT)
    assert out.stdout.strip() == "False", out.stderr


def test_end_of_input_lets_a_search_finish_with_the_model():
    out = subprocess.run(ENGINE, input=b"position startpos moves e2e4\ngo depth 1\n", capture_output=True,
                         timeout=TIMEOUT)
    lines = out.stdout.decode().splitlines()
    assert out.returncode == 0 and out.stderr == b""
    assert lines[-1].startswith("bestmove ") and any(s.startswith("played") for s in info_strings(lines)), lines


def test_closed_stdout_ends_the_engine_quietly(tiny_onnx):
    proc = subprocess.Popen([*ENGINE, "--model", str(tiny_onnx)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    try:
        proc.stdin.write(b"uci\nisready\nposition startpos\ngo movetime 20\n")
        proc.stdin.flush()
    except BrokenPipeError:
        pass
    assert proc.wait(TIMEOUT) == 0
    assert proc.stderr.read() == b""


# ---------------------------------------------------------------------------------------------------
# Options, move choice and scores


def test_multipv_lists_the_most_probable_moves_with_the_models_probabilities(uci, policy):
    engine = uci("--multipv", "3")
    position = "position startpos moves e2e4 e7e5 g1f3"
    lines, move, _ = engine.play(position, "go depth 1")
    expected = {m.uci(): p for m, _, p in policy.score_legal_moves(board_after(position)).ranked()}
    pvs = [line for line in lines if line.startswith("info depth 1") and " multipv " in line]
    assert [int(line.split(" multipv ")[1].split()[0]) for line in pvs] == [1, 2, 3]
    listed = probabilities(lines)
    assert [line.split()[-1] for line in pvs] == list(listed)  # the info lines and the listing agree
    for uci_move, p in listed.items():
        assert p == pytest.approx(expected[uci_move], abs=1e-3)
    shown_ps = list(listed.values())
    assert shown_ps == sorted(shown_ps, reverse=True)
    assert min(shown_ps) >= sorted(expected.values(), reverse=True)[3] - 1e-3  # they are the three most probable
    assert move in expected
    engine.send("setoption name multipv value 1")  # names are case-insensitive
    lines, _, _ = engine.play(position, "go depth 1")
    assert sum(" multipv " in line for line in lines if line.startswith("info depth")) == 1
    assert engine.quit() == 0


@pytest.mark.parametrize("options", [("--temperature", "0"), ("--temperature", "5", "--top-k", "1")])
def test_zero_temperature_or_top_k_1_plays_the_most_probable_move(uci, policy, options):
    engine = uci(*options)
    for moves in ("", "e2e4", "e2e4 e7e5 g1f3", "d2d4 g8f6 c2c4 e7e6"):
        position = "position startpos" + (f" moves {moves}" if moves else "")
        _, move, _ = engine.play(position, "go depth 1")
        assert move == policy.score_legal_moves(board_after(position)).ranked()[0][0].uci()
    assert engine.quit() == 0


def game_moves(engine: Uci, plies: int = 8) -> list[str]:
    """Play ``plies`` plies of one game, the engine choosing both sides."""
    moves: list[str] = []
    for _ in range(plies):
        _, move, _ = engine.play("position startpos" + (" moves " + " ".join(moves) if moves else ""), "go depth 1")
        moves.append(move)
    return moves


def test_seed_makes_games_reproducible(uci):
    first, second, other = (uci("--temperature", "1", "--seed", seed) for seed in ("5", "5", "6"))
    game = game_moves(first)
    assert game_moves(second) == game
    assert game_moves(other) != game
    other.send("ucinewgame", "setoption name Seed value 5")  # setting the seed restarts the sequence
    assert game_moves(other) == game
    for engine in (first, second, other):
        assert engine.quit() == 0


def test_temperature_decays_over_the_plies(uci):
    engine = uci("--temperature", "1", "--temperature-decay", "10")
    temperature = lambda lines: next(s for s in info_strings(lines) if s.startswith("played")).split()[-1]  # noqa: E731
    assert temperature(engine.play("position startpos", "go depth 1")[0]) == "1"
    assert temperature(engine.play("position startpos moves e2e4 e7e5 g1f3 b8c6", "go depth 1")[0]) == "0.6"
    assert temperature(engine.play(f"position fen {chess.Board().fen().replace(' 1', ' 30')}", "go depth 1")[0]) == "0"
    engine.send("setoption name TemperatureFloor value 0.25")
    assert temperature(engine.play("position startpos moves e2e4 e7e5 g1f3 b8c6 f1b5 a7a6", "go depth 1")[0]) == "0.55"
    assert engine.quit() == 0


def test_a_model_without_value_head_says_what_its_score_means(uci):
    engine = uci("--show-wdl")
    lines, _, _ = engine.play("position startpos", "go depth 1")
    assert any("no value head" in s and "score cp 0" in s for s in info_strings(lines))
    stats = next(line for line in lines if line.startswith("info depth"))
    assert " score cp 0 " in stats and " wdl " not in stats
    lines, move, _ = engine.play("position startpos moves f2f3 e7e5 g2g4", "go searchmoves d8h4")
    assert move == "d8h4" and any(" score mate 1 " in line for line in lines)  # a mate is a fact, not a guess
    assert engine.quit() == 0


@pytest.fixture(scope="module")
def value_onnx(tmp_path_factory) -> Path:
    """A small model with a value head (random weights: its numbers are arbitrary but real)."""
    import torch

    from transcend.export import export_onnx
    from transcend.model import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=256, n_layer=1, n_head=2, n_embd=32, value_head=True))
    with torch.no_grad():
        model.value_head.weight.mul_(40)  # spread the wdl away from uniform
    path = tmp_path_factory.mktemp("value") / "value.onnx"
    export_onnx(model, path)
    return path


def test_score_and_wdl_come_from_the_value_head(value_onnx):
    value_policy = MovePolicy(OnnxModel(value_onnx, provider="cpu"))
    engine = Uci("--model", str(value_onnx))
    try:
        for position in ("position startpos moves e2e4", "position startpos moves d2d4 d7d5 c2c4"):
            wdl = value_policy.score_legal_moves(board_after(position)).wdl
            for show in ("false", "true"):
                engine.send(f"setoption name UCI_ShowWDL value {show}")
                lines, _, _ = engine.play(position, "go depth 1")
                stats = next(line for line in lines if line.startswith("info depth"))
                score = f" score cp {cp_from_wdl(wdl)} "
                if show == "true":
                    score = score + "wdl {} {} {} ".format(*wdl_permille(wdl))
                assert score in stats, (stats, wdl)
                assert not any("no value head" in s for s in info_strings(lines))
    finally:
        assert engine.quit() == 0


def test_token_mode_reports_its_attempts(uci):
    engine = uci("--sampling", "token", "--temperature", "1", "--seed", "3")
    for position in ("position startpos", "position startpos moves e2e4 e7e5"):
        lines, move, _ = engine.play(position, "go depth 1")
        assert board_after(position).is_legal(chess.Move.from_uci(move))
        assert any(re.match(r"token mode: \d+ illegal attempt", s) for s in info_strings(lines)), lines
    lines, move, _ = engine.play("position startpos", "go searchmoves h2h3")
    assert move == "h2h3"
    assert engine.quit() == 0


def test_log_file_records_both_directions(uci, tmp_path):
    log = tmp_path / "engine.log"
    engine = uci("--log-file", str(log))
    engine.play("position startpos", "go depth 1")
    engine.sync()
    assert engine.quit() == 0
    text = log.read_text()
    assert "< position startpos" in text and "< isready" in text and "> readyok" in text and "> bestmove" in text


def test_switching_models_and_a_broken_one_keeps_the_last_good(uci, tmp_path, value_onnx):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07 this is not a model")
    engine = uci()
    engine.sync()
    engine.send(f"setoption name Model value {broken}")
    lines = engine.sync()
    assert any(s.startswith("error:") and "still playing with" in s for s in info_strings(lines)), lines
    lines, _, _ = engine.play("position startpos", "go depth 1")
    assert any(s.startswith("played") for s in info_strings(lines))  # the model's move, not a random one
    engine.send(f"setoption name Model value {value_onnx}")
    engine.sync()
    lines, _, _ = engine.play("position startpos", "go depth 1")
    assert not any("no value head" in s for s in info_strings(lines))
    engine.send("setoption name Model value <bundled>", "setoption name Threads value 1")
    assert not any(s.startswith("error") for s in info_strings(engine.sync()))
    assert engine.quit() == 0


def test_no_arguments_plays_with_the_bundled_model():
    engine = Uci()
    lines = engine.sync()
    lines += engine.play("position startpos moves e2e4", "go depth 1")[0]
    assert not any(s.startswith("error") for s in info_strings(lines))
    assert any(s.startswith("played") for s in info_strings(lines))
    assert engine.quit() == 0


def test_command_line_flags_show_as_option_defaults(tiny_onnx):
    out = subprocess.run([*ENGINE, "--model", str(tiny_onnx), "--temperature", "0.5", "--sampling", "token",
                          "--multipv", "2", "--top-k", "7", "--move-overhead", "40", "--show-wdl"],
                         input=b"uci\nquit\n", capture_output=True, timeout=TIMEOUT)
    lines = out.stdout.decode().splitlines()
    for expected in ("option name Temperature type string default 0.5",
                     "option name Sampling type combo default token var move var token",
                     "option name MultiPV type spin default 2 min 1 max 256",
                     "option name TopK type spin default 7 min 0 max 256",
                     "option name Move Overhead type spin default 40 min 0 max 5000",
                     "option name UCI_ShowWDL type check default true",
                     f"option name Model type string default {tiny_onnx}"):
        assert expected in lines


@pytest.mark.parametrize("args, message", [
    (["--temperature", "-1"], "Temperature must be from 0 to 100"),
    (["--sampling", "beam"], "Sampling is one of move, token"),
    (["--model", "/no/such/model.onnx"], "is not a file"),
    (["--multipv", "0"], "MultiPV must be from 1 to 256"),
])
def test_bad_flags_are_one_line_errors(args, message):
    out = subprocess.run([*ENGINE, *args], capture_output=True, text=True, timeout=TIMEOUT)
    errors = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(errors) == 1
    assert errors[0].startswith("transcend-uci: error:") and message in errors[0]
    assert "Traceback" not in out.stderr


def test_help_explains_every_flag():
    out = subprocess.run([*ENGINE, "--help"], capture_output=True, text=True, timeout=TIMEOUT)
    for flag in ("--model", "--temperature", "--sampling", "--seed", "--provider", "--threads", "--top-k",
                 "--multipv", "--temperature-decay", "--temperature-floor", "--log-file", "--move-overhead"):
        assert flag in out.stdout


# ---------------------------------------------------------------------------------------------------
# Malformed input: an explanation, then business as usual

START = "position startpos moves e2e4"
NOISE = bytes(b for b in random.Random(6).randbytes(100_000) if b != ord("\n"))

BAD_INPUTS = {
    "unknown command": (b"hello engine", START),
    "unknown tokens before a command": (b"joho debug maybe", START),
    "empty line": (b"", START),
    "blank line": (b" \t \r", START),
    "bad FEN": (b"position fen rnbqkbnr/pppppppp/9/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1", START),
    "FEN without kings": (b"position fen 8/8/8/8/8/8/8/8 w - - 0 1", START),
    "position without startpos": (b"position e2e4", START),
    "startpos then junk": (b"position startpos e2e4", START),
    "illegal move in the list": (b"position startpos moves e2e4 e7e5 e1e8 d2d4", "position startpos moves e2e4 e7e5"),
    "not a move in the list": (b"position startpos moves e2e4 castle", START),
    "a 100 kB line of moves": (b"position startpos moves e2e4" + b" e2e4" * 20_000, START),
    "a 100 kB line of text": (b"word " * 20_000, START),
    "a line over 1 MiB": (b"y" * ((1 << 20) + 100), START),
    "binary bytes": (bytes(range(256)).replace(b"\n", b""), START),
    "invalid UTF-8": (b"\xff\xfe\x00\x80 uci \xc3", START),
    "100 kB of random bytes": (NOISE, START),
    "option out of range": (b"setoption name MultiPV value 0", START),
    "option above range": (b"setoption name Threads value 100000", START),
    "negative temperature": (b"setoption name Temperature value -1", START),
    "temperature not a number": (b"setoption name Temperature value hot", START),
    "unknown option": (b"setoption name Contempt value 20", START),
    "unknown combo value": (b"setoption name Sampling value beam", START),
    "setoption without name": (b"setoption Temperature 1", START),
    "setoption without value": (b"setoption name MultiPV", START),
    "missing model file": (b"setoption name Model value /no/such/model.onnx", START),
    "unwritable log file": (b"setoption name LogFile value /no/such/dir/log.txt", START),
    "debug without on/off": (b"debug maybe", START),
    "register": (b"register later", START),
}


def test_the_noise_holds_no_command():
    words = {word.lower() for word in NOISE.decode("utf-8", "replace").split()}
    assert not words & set(UciEngine.COMMANDS)


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_malformed_input_is_explained_and_the_engine_goes_on(shared, name):
    bad, expected = BAD_INPUTS[name]
    shared.send(START, bad)
    lines = shared.sync()
    assert info_strings(lines), f"no info string for {name}: {lines}"
    assert all(line.startswith(("info string ", "readyok", "id ", "option ", "uciok")) for line in lines), lines
    assert all(len(line) <= 1100 for line in lines)
    if name == "invalid UTF-8":  # the 'uci' inside it is still read, as the protocol asks
        assert "uciok" in lines
    # 'go' with no new position: the bad line left the position where the documented rule puts it
    shared.send("go movetime 500")
    _, move, _ = shared.bestmove()
    assert board_after(expected).is_legal(chess.Move.from_uci(move)), (name, move)


# ---------------------------------------------------------------------------------------------------
# Fuzzing: random command sequences, sent in one burst as a hasty GUI would

STALEMATE = "7k/5Q2/6K1/8/8/8/8/8 b - - 0 1"
OUTPUT_STARTS = ("info ", "bestmove ", "readyok", "id ", "option ", "uciok")


def no_command(data: bytes) -> bool:
    return not {w.lower() for w in data.decode("utf-8", "replace").split()} & set(UciEngine.COMMANDS)


@st.composite
def position_commands(draw) -> tuple[str, chess.Board]:
    """A well-formed position command (startpos or FEN, with or without moves) and its board."""
    special = draw(st.sampled_from([None] * 8 + [FOOLS_MATE, STALEMATE]))
    if special:
        return f"position fen {special}", chess.Board(special)
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    board = chess.Board()
    for _ in range(draw(st.integers(0, 60))):
        if board.is_game_over():
            break
        board.push(rng.choice(list(board.legal_moves)))
    if draw(st.booleans()):  # a FEN and the last few moves
        root = board.copy()
        moves = [root.pop() for _ in range(draw(st.integers(0, min(4, len(board.move_stack)))))][::-1]
        text = f"position fen {root.fen()}"
    else:
        moves, text = board.move_stack, "position startpos"
    if moves:
        text += " moves " + " ".join(m.uci() for m in moves)
    return text, board


junk = st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" ")).filter(no_command)
bad_options = st.sampled_from([
    "setoption name MultiPV value 0", "setoption name Temperature value -2", "setoption name TopK value x",
    "setoption name Model value /nowhere.onnx", "setoption name Provider value tpu", "setoption name Threads value -1",
    "setoption name Nope value 1", "setoption", "setoption name", "setoption name Seed value 1.5",
])
good_options = st.sampled_from([
    "setoption name Temperature value 0", "setoption name Temperature value 1.5", "setoption name temperature value 0.3",
    "setoption name MultiPV value 1", "setoption name MultiPV value 4", "setoption name TopK value 3",
    "setoption name TopK value 0", "setoption name Seed value 11", "setoption name UCI_ShowWDL value true",
    "setoption name Ponder value true", "setoption name Ponder value false", "setoption name Sampling value token",
    "setoption name Sampling value move", "setoption name TemperatureDecay value 10",
    "setoption name Move Overhead value 30", "setoption name Hash value 64", "setoption name SyzygyPath value",
])
timed_go = st.one_of(
    st.integers(0, 60).map(lambda ms: f"go movetime {ms}"),
    st.tuples(st.integers(-50, 3000), st.integers(-50, 3000), st.integers(0, 100)).map(
        lambda t: f"go wtime {t[0]} btime {t[1]} winc {t[2]} binc {t[2]}"),
    st.sampled_from(["go", "go depth 1", "go nodes 5", "go mate 3", "go depth", "go movetime x", "go wtime 100 junk"]),
)


@st.composite
def sessions(draw) -> tuple[list[bytes], list[tuple[chess.Board, set[chess.Move] | None]], int]:
    """Lines to send, the (board, searchmoves) each go must answer in, and how many isready there are."""
    lines: list[bytes] = []
    searches: list[tuple[chess.Board, set[chess.Move] | None]] = []
    isready = 0
    text, board = draw(position_commands())
    lines.append(text.encode())
    open_search = None  # "infinite" or "ponder" while one waits
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["position", "bad position", "go", "go", "wait", "isready", "option", "option",
                                     "junk", "newgame", "misc", "close"]))
        if kind == "position":
            text, board = draw(position_commands())
            lines.append(text.encode())
        elif kind == "bad position":
            text, good = draw(position_commands())
            if draw(st.booleans()):  # an illegal or malformed move at the end: the moves before it count
                lines.append((text + (" " if " moves " in text else " moves ")
                              + draw(st.sampled_from(["a1a1", "xyz", "0000", "h9h1", "e2e4e"]))).encode())
                board = good
            else:  # a broken FEN: nothing changes
                lines.append(draw(st.sampled_from([b"position fen 8/8/8 w - - 0 1", b"position fen",
                                                   b"position fen 8/8/8/8/8/8/8/8 w - - 0 1", b"position"])))
        elif kind in ("go", "wait"):
            legal = list(board.legal_moves)
            searchmoves = None
            if kind == "go":
                go = draw(timed_go)
                if legal and draw(st.integers(0, 4)) == 0:
                    searchmoves = set(draw(st.lists(st.sampled_from(legal), min_size=1, max_size=3)))
                    go += " searchmoves " + " ".join(m.uci() for m in searchmoves)
            else:
                go = draw(st.sampled_from(["go infinite", "go ponder wtime 2000 btime 2000", "go ponder"]))
            lines.append(go.encode())
            searches.append((board.copy(), searchmoves))
            open_search = go.split()[1] if kind == "wait" else None
        elif kind == "isready":
            lines.append(b"isready")
            isready += 1
        elif kind == "option":
            lines.append((draw(good_options) if draw(st.booleans()) else draw(bad_options)).encode())
        elif kind == "junk":
            lines.append(draw(junk))
        elif kind == "newgame":
            lines.append(b"ucinewgame")
            board = chess.Board()
        elif kind == "misc":
            lines.append(draw(st.sampled_from([b"debug on", b"debug off", b"register later", b"", b"stop",
                                               b"ponderhit", b"uci"])))
        elif kind == "close" and open_search:
            lines.append(b"ponderhit" if open_search == "ponder" and draw(st.booleans()) else b"stop")
            open_search = None
    if open_search:
        lines.append(b"stop")
    lines.append(b"isready")
    return lines, searches, isready + 1


@pytest.fixture(scope="module")
def fuzz_engine(tiny_onnx):
    engine = Uci("--model", str(tiny_onnx))
    engine.sync()
    yield engine
    assert engine.quit() == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(session=sessions())
def test_fuzzed_sessions_never_break_the_engine(fuzz_engine, session):
    lines, searches, readies = session
    fuzz_engine.send(*lines)
    got: list[str] = []

    def finished(line: str) -> bool:
        got.append(line)
        return got.count("readyok") >= readies and sum(g.startswith("bestmove") for g in got) >= len(searches)

    fuzz_engine.read_until(finished)
    got += fuzz_engine.sync()[:-1]  # anything late: there must be no second answer to any go
    assert fuzz_engine.proc.poll() is None, "the engine died"
    assert all(line.startswith(OUTPUT_STARTS) for line in got), [g for g in got if not g.startswith(OUTPUT_STARTS)]
    answers = [line.split() for line in got if line.startswith("bestmove")]
    assert got.count("readyok") == readies and len(answers) == len(searches)
    for words, (board, searchmoves) in zip(answers, searches):
        if not any(board.legal_moves):
            assert words[1] == "0000"
            continue
        move = chess.Move.from_uci(words[1])
        assert board.is_legal(move), (words, board.fen())
        assert searchmoves is None or move in searchmoves
        if len(words) == 4:
            board.push(move)
            assert words[2] == "ponder" and board.is_legal(chess.Move.from_uci(words[3]))
