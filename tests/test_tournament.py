"""Tournament pieces: settings parsing, opening books, and single games between real players."""

from __future__ import annotations

import chess
import chess.engine
import pytest

from transcend.experts import ExpertError, open_expert
from transcend.tournaments.books import BookError, load_book, opening_for
from transcend.tournaments.config import TournamentError, model_entries, parse_opponent
from transcend.tournaments.match import (
    DrawRule,
    EnginePlayer,
    ExpertPlayer,
    GameRules,
    MatchError,
    MoveLimit,
    ResignRule,
    TimeControl,
    play_game,
)


@pytest.mark.parametrize(
    "text, tc",
    [("10+0.1", TimeControl(10, 0.1, 0)), ("40/60", TimeControl(60, 0, 40)), ("1:30+1", TimeControl(90, 1, 0)),
     ("0.5", TimeControl(0.5))],
)
def test_time_controls_parse_and_print_back(text, tc):
    assert TimeControl.parse(text) == tc
    assert TimeControl.parse(str(tc)) == tc


@pytest.mark.parametrize("text", ["fast", "10+", "40/", "0", "-5"])
def test_bad_time_controls_are_named(text):
    with pytest.raises(MatchError, match="--tc"):
        TimeControl.parse(text)


def test_exactly_one_move_limit():
    with pytest.raises(MatchError, match="exactly one"):
        MoveLimit(movetime_ms=100, nodes=5)
    with pytest.raises(MatchError, match="exactly one"):
        MoveLimit()


def test_adjudication_rules_parse():
    assert DrawRule.parse("movenumber=40,movecount=8,score=10") == DrawRule(40, 8, 10)
    assert DrawRule.parse("movecount=4 score=5") == DrawRule(0, 4, 5)
    assert ResignRule.parse("movecount=3,score=600") == ResignRule(3, 600)
    with pytest.raises(MatchError, match="missing score"):
        ResignRule.parse("movecount=3")
    with pytest.raises(MatchError, match="not one of"):
        DrawRule.parse("moves=3,movecount=1,score=1")
    with pytest.raises(MatchError, match="whole number"):
        ResignRule.parse("movecount=x,score=1")


def test_opponents_parse(tmp_path, stockfish):
    assert parse_opponent("stockfish:skill=3,nodes=200@1400").elo == 1400
    assert parse_opponent("random").kind == "expert"
    uci = parse_opponent(f"uci:{stockfish}@2000")
    assert (uci.kind, uci.elo) == ("uci", 2000)
    with pytest.raises(TournamentError, match="not an executable engine"):
        parse_opponent(f"uci:{tmp_path / 'nope'}")
    with pytest.raises(TournamentError, match="must be a number"):
        parse_opponent("random@strong")
    with pytest.raises(ExpertError, match="unknown expert"):
        parse_opponent("gnuchess")


def test_models_are_named_by_stem_or_folder(tmp_path):
    a, b = tmp_path / "a" / "model.onnx", tmp_path / "b" / "model.onnx"
    assert [m.name for m in model_entries([tmp_path / "x.onnx"])] == ["x"]
    assert [m.name for m in model_entries([a, b])] == ["a/model", "b/model"]
    with pytest.raises(TournamentError, match="twice"):
        model_entries([a, a])


def test_pgn_and_epd_books(tmp_path):
    pgn = tmp_path / "book.pgn"
    pgn.write_text('[Event "a"]\n\n1. e4 e5 2. Nf3 *\n\n[Event "b"]\n\n1. d4 d5 *\n')
    epd = tmp_path / "book.epd"
    epd.write_text("# a comment\nrnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - id \"e4\";\n")
    lines = load_book(pgn)
    assert [len(b.move_stack) for b in lines] == [3, 2]
    assert lines[0].move_stack[0] == chess.Move.from_uci("e2e4")
    (position,) = load_book(epd)
    assert position.turn == chess.BLACK and not position.move_stack
    # each opening is the start of one game pair; pairs cycle through the book
    assert opening_for(0, lines, 0, 0).move_stack == lines[0].move_stack
    assert opening_for(3, lines, 0, 0).move_stack == lines[1].move_stack


def test_random_plies_are_seeded_per_pair():
    first = opening_for(0, None, 8, seed=5)
    assert len(first.move_stack) == 8 and first.is_valid() and not first.is_game_over()
    assert opening_for(0, None, 8, seed=5).move_stack == first.move_stack
    assert opening_for(1, None, 8, seed=5).move_stack != first.move_stack
    book = [chess.Board()]
    book[0].push_san("e4")
    after_book = opening_for(0, book, 2, seed=5)
    assert after_book.move_stack[0] == chess.Move.from_uci("e2e4") and len(after_book.move_stack) == 3


@pytest.mark.parametrize(
    "name, text, message",
    [("missing.pgn", None, "no such opening book"), ("book.txt", "e4", "must be a .pgn or .epd"),
     ("bad.epd", "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq -\nnot a position\n", "bad.epd:2"),
     ("empty.pgn", "", "no openings"), ("illegal.pgn", "1. e5 *\n", "opening 1")],
)
def test_bad_books_are_named(tmp_path, name, text, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(BookError, match=message):
        load_book(path)


def _random_player(seed: int) -> ExpertPlayer:
    return ExpertPlayer(open_expert("random", seed=seed), "random")


def test_move_cap_ends_the_game_as_a_draw_after_full_move_n():
    rules = GameRules(MoveLimit(movetime_ms=100), max_moves=5)
    record = play_game(_random_player(1), _random_player(2), chess.Board(), rules, game_key=1)
    assert record.result == "1/2-1/2" and record.termination == "adjudication"
    assert record.reason == "move cap after full move 5"
    assert len(record.moves) == 10  # five full moves, White and Black


def test_stalemate_is_a_draw():
    stalemate = chess.Board("7k/5Q2/6K1/8/8/8/8/8 b - - 0 1")
    record = play_game(_random_player(1), _random_player(2), stalemate, GameRules(MoveLimit(nodes=1)), game_key=1)
    assert (record.result, record.reason, record.moves) == ("1/2-1/2", "stalemate", [])


def _stockfish_player(path: str, nodes: int) -> EnginePlayer:
    engine = chess.engine.SimpleEngine.popen_uci(path)
    engine.configure({"Threads": 1})
    return EnginePlayer(engine, "stockfish", fixed_limit=chess.engine.Limit(nodes=nodes))


def test_resign_adjudication_on_the_reported_evaluations(stockfish):
    strong = _stockfish_player(stockfish, 2000)
    try:
        rules = GameRules(MoveLimit(nodes=1), resign=ResignRule(movecount=3, score=400))
        # White (Stockfish) is a queen up; Black plays at random and reports nothing
        board = chess.Board("rnb1kbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 3")
        record = play_game(strong, _random_player(3), board, rules, game_key=1)
    finally:
        strong.close()
    assert record.result == "1-0" and record.termination == "adjudication"
    assert record.reason.startswith("resign adjudication")
    assert record.scores[-1] >= 400 and record.scores[1] is None  # Black's moves carry no score


def test_draw_adjudication_waits_for_the_move_number(stockfish):
    white, black = _stockfish_player(stockfish, 500), _stockfish_player(stockfish, 500)
    try:
        rules = GameRules(MoveLimit(nodes=1), draw=DrawRule(movenumber=45, movecount=4, score=150), max_moves=80)
        board = chess.Board("4k3/ppp5/8/8/8/8/PPP5/4K3 w - - 0 40")  # level pawn endgame
        record = play_game(white, black, board, rules, game_key=1)
    finally:
        white.close()
        black.close()
    assert record.result == "1/2-1/2"
    assert record.reason.startswith("draw adjudication")
    for move in record.moves:
        board.push_uci(move)
    assert board.fullmove_number >= 45
    assert all(abs(s) <= 150 for s in record.scores[-4:])


def test_players_seeded_alike_play_alike():
    games = [play_game(_random_player(7), _random_player(8), chess.Board(), GameRules(MoveLimit(nodes=1), max_moves=20),
                       game_key=1).moves for _ in range(2)]
    assert games[0] == games[1]
