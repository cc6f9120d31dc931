"""Rating maths: Glickman's worked Glicko-2 example, hand-computed Elo cases, anchor tables."""

from __future__ import annotations

import math
import random

import pytest

from transcend.tournaments.ratings import (
    CHI2_1_95,
    PAPER_START,
    Glicko2Rating,
    RatingError,
    _grouped,
    _log_likelihood,
    elo_difference,
    glicko2_sequential,
    glicko2_update,
    max_likelihood_elo,
    parse_anchors,
    score_interval,
)


def test_glickmans_worked_example():
    # "Example of the Glicko-2 system": 1500/200/0.06 against 1400/30, 1550/100, 1700/300, scores 1, 0, 0.
    new = glicko2_update(Glicko2Rating(1500, 200, 0.06), [(1400, 30, 1), (1550, 100, 0), (1700, 300, 0)], tau=0.5)
    assert new.rating == pytest.approx(1464.06, abs=0.01)
    assert new.rd == pytest.approx(151.52, abs=0.01)
    assert new.volatility == pytest.approx(0.05999, abs=1e-5)


def test_a_period_without_games_only_widens_the_deviation():
    new = glicko2_update(Glicko2Rating(1500, 200, 0.06), [])
    assert new.rating == 1500
    assert new.rd == pytest.approx(math.hypot(200 / 173.7178, 0.06) * 173.7178)


def test_paper_start_and_sequential_rating_move_the_right_way():
    assert PAPER_START == Glicko2Rating(1500, 500, 0.06)
    won = glicko2_sequential([(1552, 1.0)] * 10)
    lost = glicko2_sequential([(1552, 0.0)] * 10)
    assert won.rating > 1552 > 1500 > lost.rating
    assert won.rd < 500 and lost.rd < 500


def test_sequential_glicko_depends_on_order_but_ml_elo_does_not():
    games = [(1552, 1.0)] * 6 + [(1842, 0.0)] * 6 + [(2142, 0.5)] * 2
    shuffled = games[:]
    random.Random(3).shuffle(shuffled)
    assert glicko2_sequential(games).rating != pytest.approx(glicko2_sequential(shuffled).rating, abs=1.0)
    assert max_likelihood_elo(games).rating == pytest.approx(max_likelihood_elo(shuffled).rating, abs=1e-6)


def test_ml_elo_hand_computed():
    # 7.5 / 10 against one 1500 opponent: 0.75 = 1 / (1 + 10^((1500 - R) / 400)), R = 1500 + 400 log10(3).
    games = [(1500, 1.0)] * 7 + [(1500, 0.5)] + [(1500, 0.0)] * 2
    est = max_likelihood_elo(games)
    assert est.rating == pytest.approx(1500 + 400 * math.log10(3), abs=1e-6)
    assert est.games == 10
    # the interval is where the log-likelihood has dropped by chi2(1, 95%) / 2
    groups = _grouped(games)
    best = _log_likelihood(est.rating, groups)
    for bound in (est.low, est.high):
        assert best - _log_likelihood(bound, groups) == pytest.approx(CHI2_1_95 / 2, abs=1e-6)
    assert est.low < est.rating < est.high


def test_ml_elo_symmetric_cases():
    # a win against 1400 and a loss against 1600 balance exactly at 1500
    assert max_likelihood_elo([(1400, 1.0), (1600, 0.0)]).rating == pytest.approx(1500, abs=1e-6)
    # all draws against 1552 and 1842: between them
    est = max_likelihood_elo([(1552, 0.5), (1842, 0.5)])
    assert est.rating == pytest.approx((1552 + 1842) / 2, abs=1e-6)


def test_ml_elo_perfect_scores_are_unbounded_on_one_side():
    won = max_likelihood_elo([(1552, 1.0)] * 5)
    assert won.rating is None and won.high is None and won.low > 1552
    lost = max_likelihood_elo([(1552, 0.0)] * 5)
    assert lost.rating is None and lost.low is None and lost.high < 1552
    assert max_likelihood_elo([]).games == 0


def test_elo_difference_hand_computed():
    # 30 W, 40 D, 30 L: score 0.5, variance (30*0.25 + 30*0.25) / 100 = 0.15, stdev sqrt(0.15 / 100);
    # margin = elo(0.5 + 1.96 * 0.0387298) = -400 log10(1 / 0.5759097 - 1) = 53.16
    diff, margin = elo_difference(30, 40, 30)
    assert diff == pytest.approx(0.0, abs=1e-9)
    assert margin == pytest.approx(53.16, abs=0.01)
    assert elo_difference(7, 1, 2)[0] == pytest.approx(400 * math.log10(3))
    assert elo_difference(5, 0, 0) == (None, None)
    assert elo_difference(0, 0, 0) == (None, None)


def test_bad_scores_are_rejected():
    with pytest.raises(RatingError, match="between 0 and 1"):
        max_likelihood_elo([(1500, 2.0)])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("paper", {1: 1552, 3: 1842, 5: 2142}),
        ("paper-code", {1: 1554, 2: 1759, 3: 1867, 4: 2006, 5: 2148}),
        ("1=1500, 4=2000", {1: 1500, 4: 2000}),
    ],
)
def test_anchor_tables(text, expected):
    assert parse_anchors(text) == expected


@pytest.mark.parametrize("text, message", [("1552", "not LEVEL=ELO"), ("30=1000", "not in 0..20"),
                                           ("1=inf", "finite"), ("", "no anchors")])
def test_bad_anchors_are_named(text, message):
    with pytest.raises(RatingError, match=message):
        parse_anchors(text)


def test_score_interval():
    assert score_interval(0, 0, 0) is None
    assert score_interval(10, 0, 0) == (1.0, 1.0)
    low, high = score_interval(60, 20, 20)  # mean 0.7, variance (60*.09 + 20*.04 + 20*.49)/100 = 0.16
    assert low == pytest.approx(0.7 - 1.959964 * 0.04, abs=1e-4) and high == pytest.approx(0.7 + 1.959964 * 0.04, abs=1e-4)
