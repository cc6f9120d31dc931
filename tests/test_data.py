"""data prepare: lichess's real format, other PGN layouts, filters, bad input, workers, the game index."""

from __future__ import annotations

import bz2
import gzip
import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import chess
import chess.pgn
import numpy as np
import pytest
import zstandard

from conftest import lichess_game_text, random_game, transcript_of, write_lichess_pgn, write_random_pgn
from transcend.data import INDEX_DTYPE, DataError, GameFilter, load_index, load_split, prepare, time_control_class
from transcend.data.pgn import sans_from_movetext
from transcend.transcript import GAME_START_ID, decode

RESULT_CODE = {"1-0": 0, "1/2-1/2": 1, "0-1": 2, "*": -1}


def run_cli(*args: str, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transcend.cli", *args], capture_output=True, text=True,
                          input=stdin)


def dataset_games(out: Path) -> dict[str, list[str]]:
    """Each split's games as transcripts, cut by the game index (which must agree with the .bin)."""
    games = {}
    for split in ("train", "val"):
        tokens = np.asarray(load_split(out, split))
        index = load_index(out, split)
        assert index.dtype == INDEX_DTYPE
        assert int(index["length"].sum()) == tokens.size
        assert np.array_equal(index["start"], np.cumsum(index["length"]) - index["length"])
        assert all(tokens[index["start"]] == GAME_START_ID)
        games[split] = [decode(tokens[s : s + n]) for s, n in zip(index["start"], index["length"])]
    return games


def all_games(out: Path) -> list[str]:
    games = dataset_games(out)
    return games["train"] + games["val"]


def meta(out: Path) -> dict:
    return json.loads((out / "meta.json").read_text())


@pytest.fixture(scope="module")
def lichess_file(tmp_path_factory) -> Path:
    """300 different games in lichess's format (750 kB), shared by the tests of this module."""
    return write_lichess_pgn(tmp_path_factory.mktemp("lichess") / "games.pgn", 300, seed=6)


def boards(n: int, seed: int, min_plies: int = 10, max_plies: int = 80) -> list[chess.Board]:
    rng = random.Random(seed)
    return [random_game(rng, max_plies=rng.randint(min_plies, max_plies)) for _ in range(n)]


def test_lichess_dump_format_gives_python_chess_transcripts_and_an_index(tmp_path):
    games = boards(40, seed=1)
    texts = [lichess_game_text(b, seed=i, evals=i % 3 == 0) for i, b in enumerate(games)]
    (tmp_path / "l.pgn").write_text("".join(texts))
    prepare([str(tmp_path / "l.pgn")], tmp_path / "d", val_fraction=0.2, progress=False)
    expected = [transcript_of(b) for b in games]
    split = dataset_games(tmp_path / "d")
    assert sorted(split["train"] + split["val"]) == sorted(expected)
    assert split["val"] and split["train"]
    # order is kept within a split, and the index carries each game's result tag
    assert split["train"] == [t for t in expected if t in set(split["train"])]
    results = {transcript_of(b): RESULT_CODE[re.search(r'\[Result "(.*)"\]', t).group(1)]
               for b, t in zip(games, texts)}
    for name in ("train", "val"):
        index = np.load(tmp_path / "d" / f"{name}_games.npy", mmap_mode="r")
        assert [int(r) for r in index["result"]] == [results[t] for t in split[name]]
    info = meta(tmp_path / "d")
    assert info["games_read"] == info["games_kept"] == 40 and info["rejected"] == {}
    assert info["games"]["val"] == len(split["val"]) and info["symbols"]["train"] == sum(map(len, split["train"]))
    assert info["index"]["dtype"] == [["start", "<i8"], ["length", "<i4"], ["result", "|i1"]]


def test_other_pgn_layouts(tmp_path):
    board = boards(1, seed=2, min_plies=30, max_plies=30)[0]
    expected = transcript_of(board)
    game = chess.pgn.Game.from_board(board)
    node = game.variations[0].variations[0]
    node.comment = "a comment; with a semicolon (and parentheses)"
    node.nags.add(chess.pgn.NAG_DUBIOUS_MOVE)
    alt = chess.Board()
    alt.push(board.move_stack[0])
    game.variations[0].add_variation(next(m for m in alt.legal_moves if m != board.move_stack[1])).comment = "side line"
    exported = str(game)  # python-chess: variations, comments, NAGs ($6), `1... e5` after comments
    sans = expected[1:].split(" ")
    compact = " ".join(sans) + " *"  # 1.e4 e5 2.Nf3: numbers glued
    tags = '[Event "?"]\n[Result "*"]\n'
    escape = tags + "\n% an escaped line\n" + compact
    line_comment = tags + "\n" + compact.replace(" ", " ; rest of line\n", 1)
    no_blank = tags + compact  # tags and moves with no blank line between them
    plain = str(chess.pgn.Game.from_board(board))  # 1. e4 e5 2. Nf3 Nc6
    texts = [exported, tags + "\n" + compact, escape, line_comment, no_blank, plain]
    crlf = ("\n\n".join(texts) + "\n").replace("\n", "\r\n")
    (tmp_path / "g.pgn").write_bytes(b"\xef\xbb\xbf" + crlf.encode())
    prepare([str(tmp_path / "g.pgn")], tmp_path / "d", val_fraction=0.0, progress=False)
    assert all_games(tmp_path / "d") == [expected] * len(texts)


@pytest.mark.parametrize("movetext, sans", [
    (b"1. e4 $1 e5 $2 2. Nf3 (2. Nc3 Nf6 (2... Nc6)) Nc6 1-0", [b"e4", b"e5", b"Nf3", b"Nc6"]),
    (b"1.e4 e5 2.Nf3!! Nc6?? 3.Bb5 {unclosed", [b"e4", b"e5", b"Nf3", b"Nc6", b"Bb5"]),
    (b"1. e4 1... e5 2. Qh5 2... Nc6 3. Bc4 3... Nf6 4. Qxf7# 1-0",
     [b"e4", b"e5", b"Qh5", b"Nc6", b"Bc4", b"Nf6", b"Qxf7#"]),
    (b"1. O-O-O+ exd8=Q#", [b"O-O-O+", b"exd8=Q#"]),
    (b"1. e4 e5 2. Nf3 garbage 1-0", None),
    (b"1. e4 e5 2. -- Nc6", None),
    (b"1-0", []),
])
def test_movetext_to_sans(movetext, sans):
    assert sans_from_movetext(movetext) == sans


@pytest.mark.parametrize("value, speed", [
    ("29+0", "ultrabullet"), ("15+1", "bullet"), ("60+0", "bullet"), ("179", "bullet"), ("180+0", "blitz"),
    ("120+2", "blitz"), ("300+3", "blitz"), ("480+0", "rapid"), ("600+5", "rapid"), ("1500+0", "classical"),
    ("1800+30", "classical"), ("-", "correspondence"), ("21600+0", "correspondence"), ("?", None),
    ("", None), (None, None), ("40/7200", None),
])
def test_time_control_class_uses_lichess_estimate(value, speed):
    assert time_control_class(value) == speed


def filter_file(tmp_path: Path) -> tuple[Path, list[chess.Board]]:
    """Games that each trip exactly one filter (and one that passes every filter below)."""
    games = boards(10, seed=3, min_plies=20, max_plies=60)
    short = boards(1, seed=4, min_plies=4, max_plies=4)[0]
    keep = {"WhiteElo": "1200", "BlackElo": "1250", "TimeControl": "300+0", "Termination": "Normal"}
    variants = [
        {},  # kept
        {"WhiteElo": "1600"},  # rating (max-elo 1500, both players)
        {"BlackElo": "900"},  # rating (min-elo 1000)
        {"WhiteElo": "?"},  # missing_rating
        {"TimeControl": "60+0"},  # time_control: bullet
        {"TimeControl": "-"},  # time_control: correspondence
        {"Termination": "Time forfeit"},  # termination
        {"Variant": "Crazyhouse"},  # variant
        {"Variant": "Standard"},  # kept: an explicit Standard
        {"FEN": "8/8/8/8/8/8/8/K1k5 w - - 0 1", "SetUp": "1"},  # custom_start
    ]
    texts = [lichess_game_text(board, {**keep, **v}, seed=i) for i, (board, v) in enumerate(zip(games, variants))]
    texts.append(lichess_game_text(short, keep, seed=99))  # too_short with --min-moves 10
    texts.append("".join(f'[{k} "{v}"]\n' for k, v in keep.items()) + "\n1-0\n\n")  # no_moves
    path = tmp_path / "f.pgn"
    path.write_text("".join(texts))
    return path, [games[0], games[8]]


def test_each_filter_rejects_and_counts(tmp_path):
    path, kept = filter_file(tmp_path)
    result = run_cli("data", "prepare", str(path), "--out", str(tmp_path / "d"), "--max-elo", "1500", "--min-elo",
                     "1000", "--min-moves", "10", "--time-control", "blitz,rapid", "--termination", "normal",
                     "--quiet")
    assert result.returncode == 0, result.stderr
    assert sorted(all_games(tmp_path / "d")) == sorted(transcript_of(b) for b in kept)
    info = meta(tmp_path / "d")
    assert info["rejected"] == {"rating": 2, "missing_rating": 1, "time_control": 2, "termination": 1,
                                "variant": 1, "custom_start": 1, "too_short": 1, "no_moves": 1}
    assert info["games_read"] == 12 and info["games_kept"] == 2
    assert info["filters"] == {"max_elo": 1500, "min_elo": 1000, "elo_rule": "both", "min_moves": 10,
                               "max_moves": 1000, "time_controls": ["blitz", "rapid"], "terminations": ["normal"]}
    assert "kept 2" in result.stdout and "games/s" in result.stdout


def test_rating_rule_either_and_no_filter(tmp_path):
    path, _ = filter_file(tmp_path)
    prepare([str(path)], tmp_path / "either", GameFilter(max_elo=1500, min_elo=1000, elo_rule="either"), progress=False)
    assert meta(tmp_path / "either")["rejected"] == {"variant": 1, "custom_start": 1, "no_moves": 1}
    prepare([str(path)], tmp_path / "all", GameFilter(max_moves=30), progress=False)
    info = meta(tmp_path / "all")
    assert info["rejected"]["too_long"] >= 1 and "rating" not in info["rejected"]


def bad_input_file(tmp_path: Path) -> tuple[Path, list[str]]:
    """Good games around one of each kind of bad input; returns the good games' transcripts."""
    good = boards(7, seed=5)
    rng = random.Random(0)
    garbage = b"\x00" + bytes(rng.randrange(256) for _ in range(3000)).replace(b"\n", b"")  # one block
    long_game = " ".join(f"{i + 1}. " + ("Nf3 Nf6" if i % 2 == 0 else "Ng1 Ng8") for i in range(10_000))
    illegal = '[Event "illegal"]\n\n1. e4 e5 2. Ke3 Nc6 *\n\n'  # well-formed, but the king cannot go there
    bad_utf8 = b'[Event "bad utf-8"]\n\n1. e4 e5 2. Nf3 \xff\xfe 1-0\n\n'
    parts = [
        lichess_game_text(good[0]).encode(),
        b'[Event "x"]\n\n' + garbage + b"\n\n",  # binary garbage as a movetext: not UTF-8
        b'[Event "junk"]\n\n1. e4 e5 2. Nf3 hello world 1-0\n\n',  # text that is not moves
        lichess_game_text(good[1]).encode(),
        garbage + b"\n\n",  # binary garbage with no tags at all
        lichess_game_text(good[2]).encode(),
        bad_utf8,
        lichess_game_text(good[3]).encode(),
        f'[Event "long"]\n\n{long_game} 1/2-1/2\n\n'.encode(),
        b"1. e4 e5 2. Nf3 Nc6 1-0\n\n",  # a game missing its tags
        lichess_game_text(good[4]).encode(),
        illegal.encode(),
        lichess_game_text(good[5]).encode(),
        lichess_game_text(good[6]).encode().replace(b'[White "', b'[White "\xff\xfe', 1),  # kept: only a name
    ]
    path = tmp_path / "bad.pgn"
    path.write_bytes(b"".join(parts))
    return path, [transcript_of(b) for b in good]


def test_bad_input_is_skipped_and_counted(tmp_path):
    path, good = bad_input_file(tmp_path)
    result = run_cli("data", "prepare", str(path), "--out", str(tmp_path / "d"), "--validate", "--quiet")
    assert result.returncode == 0, result.stderr
    assert sorted(all_games(tmp_path / "d")) == sorted(good)
    assert meta(tmp_path / "d")["rejected"] == {"parse_error": 1, "no_headers": 2, "invalid_utf8": 2,
                                                "too_long": 1, "illegal_move": 1}
    # without --validate the illegal game is kept as written (only its SAN shape is checked)
    prepare([str(path)], tmp_path / "fast", GameFilter(max_moves=30_000), progress=False)
    info = meta(tmp_path / "fast")
    assert info["rejected"] == {"parse_error": 1, "no_headers": 2, "invalid_utf8": 2}
    assert info["games_kept"] == len(good) + 2


def test_validate_rewrites_san_as_python_chess_writes_it(tmp_path):
    (tmp_path / "v.pgn").write_text('[Event "?"]\n\n1. e4 e5 2. Qh5 Nbc6 3. Bc4 Nf6 4. Qxf7 1-0\n\n')
    prepare([str(tmp_path / "v.pgn")], tmp_path / "d", validate=True, val_fraction=0, progress=False)
    assert all_games(tmp_path / "d") == [";1.e4 e5 2.Qh5 Nc6 3.Bc4 Nf6 4.Qxf7#"]


def compress(kind: str, data: bytes) -> bytes:
    if kind == "bz2":
        return bz2.compress(data, 1)  # 100 kB blocks, so that half a file holds whole blocks
    return {"zst": zstandard.ZstdCompressor().compress, "gz": gzip.compress}[kind](data)


def test_compressed_files_and_stdin_read_the_same(tmp_path, lichess_file):
    plain = lichess_file
    prepare([str(plain)], tmp_path / "plain", progress=False)
    expected = (tmp_path / "plain" / "train.bin").read_bytes()
    for kind in ("zst", "bz2", "gz"):
        path = tmp_path / f"g.pgn.{kind}"
        path.write_bytes(compress(kind, plain.read_bytes()))
        prepare([str(path)], tmp_path / kind, progress=False)
        assert (tmp_path / kind / "train.bin").read_bytes() == expected, kind
    # a zstd stream on stdin, recognised by its content
    result = subprocess.run([sys.executable, "-m", "transcend.cli", "data", "prepare", "-", "--out",
                             str(tmp_path / "stdin"), "--quiet"], input=compress("zst", plain.read_bytes()),
                            capture_output=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "stdin" / "train.bin").read_bytes() == expected


@pytest.mark.parametrize("kind", ["zst", "bz2"])
def test_truncated_compressed_file_keeps_the_games_before_the_damage(tmp_path, kind, lichess_file):
    plain = lichess_file
    blob = compress(kind, plain.read_bytes())
    cut = tmp_path / f"cut.pgn.{kind}"
    cut.write_bytes(blob[: len(blob) // 2])
    result = run_cli("data", "prepare", str(cut), str(plain), "--out", str(tmp_path / "d"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr and str(cut) in result.stderr
    info = meta(tmp_path / "d")
    assert info["rejected"] == {"truncated": 1} and len(info["input_errors"]) == 1
    games = all_games(tmp_path / "d")
    first_part = info["games_kept"] - 300
    assert 0 < first_part < 300
    prepare([str(plain)], tmp_path / "whole", val_fraction=0, progress=False)
    whole = all_games(tmp_path / "whole")
    assert sorted(games) == sorted(whole[:first_part] + whole)


def test_corrupt_zstd_in_the_middle(tmp_path, lichess_file):
    plain = lichess_file
    blob = bytearray(compress("zst", plain.read_bytes()))
    blob[len(blob) // 2 : len(blob) // 2 + 64] = bytes(64)
    (tmp_path / "bad.zst").write_bytes(bytes(blob))
    stats = prepare([str(tmp_path / "bad.zst")], tmp_path / "d", progress=False)
    assert stats.input_errors and "zstd" in stats.input_errors[0]
    assert 0 < stats.games_kept < 300


def test_workers_and_chunk_size_do_not_change_the_output(tmp_path, lichess_file):
    path, _ = bad_input_file(tmp_path)
    inputs = [str(lichess_file), str(path), str(lichess_file)]
    prepare(inputs, tmp_path / "one", progress=False, val_fraction=0.1)
    prepare(inputs, tmp_path / "many", progress=False, val_fraction=0.1, workers=2, chunk_size=5000)
    for name in ("train.bin", "val.bin", "train_games.npy", "val_games.npy", "meta.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "many" / name).read_bytes(), name


def test_split_is_by_a_hash_of_the_game(tmp_path, lichess_file):
    games = lichess_file
    prepare([str(games)], tmp_path / "a", val_fraction=0.25, progress=False)
    split = dataset_games(tmp_path / "a")
    assert 40 < len(split["val"]) < 110
    # the same games in another file, in another order, land on the same sides
    texts = re.split(r"\n\n(?=\[Event )", games.read_text())
    (tmp_path / "r.pgn").write_text("\n\n".join(reversed(texts)))
    prepare([str(tmp_path / "r.pgn")], tmp_path / "b", val_fraction=0.25, progress=False)
    other = dataset_games(tmp_path / "b")
    assert set(other["val"]) == set(split["val"]) and set(other["train"]) == set(split["train"])
    prepare([str(games)], tmp_path / "none", val_fraction=0.0, progress=False)
    assert load_split(tmp_path / "none", "val").size == 0 and load_index(tmp_path / "none", "val").size == 0


def test_interrupted_prepare_leaves_the_previous_dataset_whole(tmp_path, lichess_file):
    out = tmp_path / "d"
    write_random_pgn(tmp_path / "old.pgn", 20, seed=11)
    prepare([str(tmp_path / "old.pgn")], out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    games = lichess_file.read_bytes() * 6
    proc = subprocess.Popen([sys.executable, "-m", "transcend.cli", "data", "prepare", "-", "--out", str(out),
                             "--quiet"], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(games)  # more than one chunk: the first ones are written, then it waits for stdin
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while not (out / "train.bin.tmp").exists() or (out / "train.bin.tmp").stat().st_size == 0:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.decode().strip() == "transcend: interrupted"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("args, message", [
    (["missing.pgn"], "missing.pgn: no such file"),
    (["EMPTY"], "no games found"),
    (["GAMES", "--max-elo", "100"], "no game passed the filters (rejected: rating"),
    (["GAMES", "--time-control", "blitz,hyperbullet"], "unknown time-control class 'hyperbullet'"),
    (["GAMES", "--min-elo", "2000", "--max-elo", "1000"], "--min-elo 2000 is above --max-elo 1000"),
    (["-", "-"], "stdin ('-') can be read only once"),
    (["GARBAGE"], "no game passed the filters (rejected: no_headers 1)"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, args, message):
    (tmp_path / "EMPTY").write_text("")
    (tmp_path / "GARBAGE").write_bytes(bytes(range(1, 256)) * 10)
    write_random_pgn(tmp_path / "GAMES", 5)
    args = [str(tmp_path / a) if a in ("EMPTY", "GAMES", "GARBAGE") else a for a in args]
    result = run_cli("data", "prepare", *args, "--out", str(tmp_path / "out"), "--quiet", stdin="")
    assert result.returncode != 0
    assert result.stderr.startswith("transcend: error: ") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_memory_stays_flat_on_a_large_stream(tmp_path):
    """80 MB through stdin: the process's peak memory grows by far less than that."""
    game = lichess_game_text(boards(1, seed=13, min_plies=80, max_plies=80)[0]).encode()
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from transcend.data import prepare\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"prepare(['-'], Path({str(tmp_path / 'd')!r}), progress=False)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    block = game * 400
    for _ in range(80_000_000 // len(block)):
        proc.stdin.write(block)
    out, _ = proc.communicate()
    grown_kb = int(out)
    assert meta(tmp_path / "d")["games_read"] == 400 * (80_000_000 // len(block))
    assert grown_kb < 40_000, f"peak memory grew by {grown_kb} kB"
