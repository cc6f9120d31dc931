"""The UCI engine's parts on their own: options, ``go`` parsing, time limits, temperature schedule, score."""

from __future__ import annotations

import argparse
from dataclasses import fields

import chess
import numpy as np
import pytest

from transcend.uci.scores import cp_from_wdl, wdl_permille
from transcend.inference.choice import temperature_at
from transcend.uci.timeman import CostTracker, GoParams, parse_go, time_limit
from transcend.uci.options import (
    OPTIONS,
    OptionError,
    Settings,
    add_flags,
    declarations,
    find_option,
    settings_from_args,
)


def test_every_setting_has_exactly_one_option():
    assert sorted(spec.field for spec in OPTIONS) == sorted(f.name for f in fields(Settings))


def test_option_names_are_case_and_space_insensitive():
    assert find_option("move   overhead").name == "Move Overhead"
    assert find_option("TEMPERATURE").field == "temperature"
    with pytest.raises(OptionError, match="no option called"):
        find_option("Contempt")


@pytest.mark.parametrize("name, text, value", [
    ("Temperature", "0.5", 0.5), ("Temperature", " 1e-3 ", 0.001), ("Temperature", "0", 0.0),
    ("Sampling", "TOKEN", "token"), ("UCI_ShowWDL", "True", True), ("Ponder", "false", False),
    ("MultiPV", "3", 3), ("Seed", "-1", -1), ("SyzygyPath", "<empty>", ""), ("Model", "<bundled>", "<bundled>"),
])
def test_valid_values_parse(name, text, value):
    assert find_option(name).parse(text) == value


@pytest.mark.parametrize("name, text", [
    ("Temperature", "-0.1"), ("Temperature", "101"), ("Temperature", "nan"), ("Temperature", "inf"),
    ("Temperature", "warm"), ("MultiPV", "0"), ("MultiPV", "2.5"), ("TopK", "-1"), ("Sampling", "beam"),
    ("UCI_ShowWDL", "yes"), ("Threads", "100000"), ("Model", "/nowhere/model.onnx"), ("Seed", "-2"),
    ("LogFile", "/nonexistent-dir/log.txt"),
])
def test_invalid_values_are_rejected_with_the_rule(name, text):
    with pytest.raises(OptionError, match=name.split()[0]):
        find_option(name).parse(text)


def test_float_options_are_strings_and_spins_are_integers():
    lines = {line.split(" type ")[0][len("option name "):]: line for line in declarations(Settings())}
    assert "type string default 0.001" in lines["Temperature"]
    assert "type string" in lines["TemperatureFloor"]
    assert lines["MultiPV"].endswith("type spin default 1 min 1 max 256")
    assert lines["Sampling"].endswith("type combo default move var move var token")
    assert lines["Model"].endswith("default <bundled>")
    for name in ("Move Overhead", "Threads", "Hash", "SyzygyPath", "UCI_ShowWDL", "Ponder"):
        assert name in lines


def test_flags_mirror_options_and_are_validated_the_same_way(capsys):
    parser = argparse.ArgumentParser()
    add_flags(parser)
    settings = settings_from_args(parser.parse_args(
        ["--temperature", "0.3", "--sampling", "token", "--multipv", "4", "--seed", "9", "--show-wdl"]))
    assert (settings.temperature, settings.sampling, settings.multipv, settings.seed, settings.show_wdl) == \
        (0.3, "token", 4, 9, True)
    assert settings_from_args(parser.parse_args([])) == Settings()
    with pytest.raises(SystemExit):
        parser.parse_args(["--temperature", "-1"])
    assert "Temperature must be from 0 to 100" in capsys.readouterr().err


def test_parse_go_reads_everything_and_reports_junk():
    go, problems = parse_go("wtime 1000 btime -20 winc 10 binc 0 movestogo 5 depth 3 nodes 9 mate 2 "
                            "movetime 50 infinite ponder searchmoves e2e4 d2d4".split())
    assert go == GoParams(1000, -20, 10, 0, 5, 3, 9, 2, 50, True, True, ("e2e4", "d2d4"))
    assert problems == []
    go, problems = parse_go(["depth", "x", "movetime", "-5", "fast", "wtime"])
    assert go == GoParams()
    assert len(problems) == 4


def test_time_limit_stays_within_the_clock():
    white = chess.WHITE
    assert time_limit(GoParams(), white, 10) is None
    assert time_limit(GoParams(infinite=True, depth=5), white, 10) is None
    assert time_limit(GoParams(movetime=100), white, 10) == pytest.approx(0.090)
    one_second = time_limit(GoParams(wtime=1000, btime=1000, winc=10, binc=10), white, 10)
    assert 0.02 < one_second < 0.1
    assert time_limit(GoParams(wtime=5, btime=60000), white, 10) == 0.0  # below the overhead: answer at once
    assert time_limit(GoParams(wtime=60000, btime=5), chess.BLACK, 10) == 0.0
    assert time_limit(GoParams(wtime=1000, movestogo=1), white, 0) == pytest.approx(0.8)
    assert time_limit(GoParams(wtime=100000, winc=5000), white, 0) <= 50.0  # never more than half the clock
    for clock in range(0, 3000, 37):  # never past the clock, whatever the increment or moves to go
        for inc in (0, 10, 1000):
            for mtg in (None, 1, 2, 40):
                limit = time_limit(GoParams(wtime=clock, winc=inc, movestogo=mtg), white, 10)
                assert 0 <= limit * 1000 <= max(clock - 10, 0)


def test_cost_tracker_gives_the_recent_median_and_forgets_when_skipped():
    costs = CostTracker(keep=3)
    assert costs.estimate() is None
    for seconds in (0.05, 0.01, 0.02, 0.03):
        costs.add(seconds)
    assert costs.estimate() == 0.02  # median of 0.01, 0.02, 0.03: 0.05 has left the window
    costs.forget_oldest()
    costs.forget_oldest()
    assert costs.estimate() == 0.03
    costs.forget_oldest()
    assert costs.estimate() is None  # after enough skips the model is tried again


def test_temperature_decays_linearly_to_the_floor():
    settings = Settings(temperature=1.0, temperature_decay=10, temperature_floor=0.1).choice()
    assert temperature_at(0, settings) == 1.0
    assert temperature_at(5, settings) == pytest.approx(0.55)
    assert temperature_at(10, settings) == pytest.approx(0.1)
    assert temperature_at(300, settings) == pytest.approx(0.1)
    assert temperature_at(300, Settings(temperature=0.7).choice()) == 0.7  # no decay by default


def test_score_from_wdl_follows_the_documented_curve():
    assert cp_from_wdl(np.array([0.3, 0.4, 0.3])) == 0
    assert cp_from_wdl(np.array([0.75, 0.0, 0.25])) == 298
    assert cp_from_wdl(np.array([0.5, 0.5, 0.0])) == 298  # a draw counts half
    assert cp_from_wdl(np.array([0.0, 0.0, 1.0])) == -1876  # clipped at E = 0.001
    assert cp_from_wdl(np.array([0.2, 0.1, 0.7])) < 0


@pytest.mark.parametrize("wdl", [[0.3334, 0.3333, 0.3333], [0.9996, 0.0002, 0.0002], [0.0, 0.0, 1.0], [0.5, 0.0, 0.5]])
def test_wdl_permille_sums_to_1000(wdl):
    w, d, l = wdl_permille(np.array(wdl))
    assert w + d + l == 1000 and min(w, d, l) >= 0
    assert abs(w - 1000 * wdl[0]) <= 1 and abs(l - 1000 * wdl[2]) <= 1
