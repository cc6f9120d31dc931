"""Ratings from game results: Glicko-2 as the paper computed Figure 1, and order-free Elo.

Glicko-2 follows Glickman, "Example of the Glicko-2 system" (2013): ratings on the Glicko scale are
mapped to ``mu = (r - 1500) / 173.7178`` and ``phi = RD / 173.7178``; the new volatility is found with
the Illinois algorithm. The paper's protocol (docs/protocol.md) rates each model and
temperature once over all its games, each game its own rating period, against Stockfish levels with
fixed anchor ratings and RD 0, starting from 1500 / RD 500 / volatility 0.06 with system constant 0.5.
Because that is sequential, the result depends on the order of the games; the maximum-likelihood Elo
beside it does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import TranscendError

GLICKO2_SCALE = 173.7178
PAPER_START_RATING = 1500.0
PAPER_START_RD = 500.0
PAPER_START_VOLATILITY = 0.06
PAPER_TAU = 0.5
_CONVERGENCE = 1e-6
Z95 = 1.959963984540054  # two-sided 95% normal quantile
CHI2_1_95 = Z95 * Z95  # 95% quantile of chi-square with one degree of freedom

ANCHOR_TABLES: dict[str, dict[int, float]] = {
    # lichess ratings of accounts running Stockfish at these skill levels, 0.1 s a move (Figure 1)
    "paper": {1: 1552.0, 3: 1842.0, 5: 2142.0},
    # the older table in the paper's code
    "paper-code": {1: 1554.0, 2: 1759.0, 3: 1867.0, 4: 2006.0, 5: 2148.0},
}


class RatingError(TranscendError):
    """Bad rating input (an anchor table that cannot be read, a score outside 0..1)."""


@dataclass(frozen=True)
class Glicko2Rating:
    rating: float
    rd: float
    volatility: float


PAPER_START = Glicko2Rating(PAPER_START_RATING, PAPER_START_RD, PAPER_START_VOLATILITY)


@dataclass(frozen=True)
class EloEstimate:
    """A maximum-likelihood Elo with its 95% likelihood-ratio interval.

    ``rating`` is None when it is unbounded (every game won or every game lost); the side of the
    interval that stays finite is still given.
    """

    rating: float | None
    low: float | None
    high: float | None
    games: int


def _check_score(score: float) -> None:
    if not 0.0 <= score <= 1.0:
        raise RatingError(f"a game score must be between 0 and 1, not {score}")


def glicko2_update(
    player: Glicko2Rating,
    games: Sequence[tuple[float, float, float]],
    tau: float = PAPER_TAU,
) -> Glicko2Rating:
    """One Glicko-2 rating period. ``games``: (opponent rating, opponent RD, score) per game."""
    mu = (player.rating - 1500.0) / GLICKO2_SCALE
    phi = player.rd / GLICKO2_SCALE
    sigma = player.volatility
    if not games:
        return Glicko2Rating(player.rating, math.sqrt(phi * phi + sigma * sigma) * GLICKO2_SCALE, sigma)

    inv_v = 0.0
    gain = 0.0  # sum of g(phi_j) * (s_j - E_j)
    for opp_rating, opp_rd, score in games:
        _check_score(score)
        mu_j = (opp_rating - 1500.0) / GLICKO2_SCALE
        phi_j = opp_rd / GLICKO2_SCALE
        g = 1.0 / math.sqrt(1.0 + 3.0 * phi_j * phi_j / (math.pi * math.pi))
        expected = 1.0 / (1.0 + math.exp(-g * (mu - mu_j)))
        inv_v += g * g * expected * (1.0 - expected)
        gain += g * (score - expected)
    v = 1.0 / inv_v
    delta = v * gain

    new_sigma = _new_volatility(phi, sigma, v, delta, tau)
    phi_star = math.sqrt(phi * phi + new_sigma * new_sigma)
    new_phi = 1.0 / math.sqrt(1.0 / (phi_star * phi_star) + 1.0 / v)
    new_mu = mu + new_phi * new_phi * gain
    return Glicko2Rating(new_mu * GLICKO2_SCALE + 1500.0, new_phi * GLICKO2_SCALE, new_sigma)


def _new_volatility(phi: float, sigma: float, v: float, delta: float, tau: float) -> float:
    """Step 5 of Glickman's procedure: the root of f by the Illinois (regula falsi) algorithm."""
    a = math.log(sigma * sigma)

    def f(x: float) -> float:
        ex = math.exp(x)
        return ex * (delta * delta - phi * phi - v - ex) / (2.0 * (phi * phi + v + ex) ** 2) - (x - a) / (tau * tau)

    big_a = a
    if delta * delta > phi * phi + v:
        big_b = math.log(delta * delta - phi * phi - v)
    else:
        k = 1
        while f(a - k * tau) < 0:
            k += 1
        big_b = a - k * tau
    f_a, f_b = f(big_a), f(big_b)
    while abs(big_b - big_a) > _CONVERGENCE:
        big_c = big_a + (big_a - big_b) * f_a / (f_b - f_a)
        f_c = f(big_c)
        if f_c * f_b <= 0:
            big_a, f_a = big_b, f_b
        else:
            f_a /= 2.0
        big_b, f_b = big_c, f_c
    return math.exp(big_a / 2.0)


def glicko2_sequential(
    games: Iterable[tuple[float, float]],
    start: Glicko2Rating = PAPER_START,
    tau: float = PAPER_TAU,
) -> Glicko2Rating:
    """The paper's rating: each game (anchor rating, score) its own rating period, anchors at RD 0."""
    rating = start
    for opp_rating, score in games:
        rating = glicko2_update(rating, [(opp_rating, 0.0, score)], tau)
    return rating


def expected_score(rating: float, opponent: float) -> float:
    """The Elo model's expected score of ``rating`` against ``opponent``."""
    return 1.0 / (1.0 + 10.0 ** ((opponent - rating) / 400.0))


def _grouped(games: Iterable[tuple[float, float]]) -> list[tuple[float, int, float]]:
    """(opponent rating, games, total score) per distinct opponent rating: the likelihood only needs these."""
    groups: dict[float, list[float]] = {}
    for opp, score in games:
        _check_score(score)
        group = groups.setdefault(opp, [0, 0.0])
        group[0] += 1
        group[1] += score
    return [(opp, int(n), total) for opp, (n, total) in groups.items()]


def _log_likelihood(rating: float, groups: Sequence[tuple[float, int, float]]) -> float:
    total = 0.0
    for opp, n, score in groups:
        # log p and log(1 - p) computed stably from the rating difference
        x = (rating - opp) * math.log(10.0) / 400.0
        log_p = -math.log1p(math.exp(-x)) if x > -30 else x
        log_q = -math.log1p(math.exp(x)) if x < 30 else -x
        total += score * log_p + (n - score) * log_q
    return total


def _bisect(fn, low: float, high: float, iterations: int = 200) -> float:
    """A root of the monotone ``fn`` between ``low`` and ``high`` (fn(low) and fn(high) differ in sign)."""
    f_low = fn(low)
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        f_mid = fn(mid)
        if (f_mid > 0) == (f_low > 0):
            low, f_low = mid, f_mid
        else:
            high = mid
        if high - low < 1e-9:
            break
    return 0.5 * (low + high)


def max_likelihood_elo(games: Sequence[tuple[float, float]]) -> EloEstimate:
    """The Elo rating that makes the games most likely, against opponents of known rating.

    ``games``: (opponent rating, score) with score 1, 0.5 or 0 (a draw counts as half a win and half a
    loss). The interval is where twice the log-likelihood drop stays within the chi-square(1) 95%
    quantile; it is exact for any number of games and stays meaningful at perfect scores.
    """
    groups = _grouped(games)
    count = sum(n for _, n, _ in groups)
    if not count:
        return EloEstimate(None, None, None, 0)
    lowest = min(opp for opp, _, _ in groups) - 4000.0
    highest = max(opp for opp, _, _ in groups) + 4000.0
    total = sum(score for _, _, score in groups)

    def score_gap(rating: float) -> float:  # decreasing in rating; zero at the maximum
        return total - sum(n * expected_score(rating, opp) for opp, n, _ in groups)

    if total <= 0.0 or total >= count:
        best, best_ll = None, 0.0  # the supremum of the likelihood is 1, reached at +-infinity
    else:
        best = _bisect(score_gap, lowest, highest)
        best_ll = _log_likelihood(best, groups)
    threshold = best_ll - CHI2_1_95 / 2.0

    def drop(rating: float) -> float:
        return _log_likelihood(rating, groups) - threshold

    low = high = None
    if total > 0.0:
        centre = best if best is not None else highest
        if drop(lowest) < 0:
            low = _bisect(drop, lowest, centre)
    if total < count:
        centre = best if best is not None else lowest
        if drop(highest) < 0:
            high = _bisect(drop, centre, highest)
    return EloEstimate(best, low, high, count)


def _score_mean_stdev(wins: int, draws: int, losses: int) -> tuple[float, float]:
    """Mean score per game and its standard error, from the trinomial W/D/L variance."""
    n = wins + draws + losses
    mean = (wins + 0.5 * draws) / n
    variance = (wins * (1.0 - mean) ** 2 + draws * (0.5 - mean) ** 2 + losses * mean**2) / n
    return mean, math.sqrt(variance / n)


def score_interval(wins: int, draws: int, losses: int) -> tuple[float, float] | None:
    """95% interval of the score per game (normal approximation of the W/D/L variance, within [0, 1]).

    None without games. With every game the same result the variance is 0 and the interval a point:
    read it with the game count.
    """
    if wins + draws + losses == 0:
        return None
    mean, stdev = _score_mean_stdev(wins, draws, losses)
    return max(0.0, mean - Z95 * stdev), min(1.0, mean + Z95 * stdev)


def elo_difference(wins: int, draws: int, losses: int) -> tuple[float | None, float | None]:
    """Elo difference implied by a score, with a 95% margin from the trinomial W/D/L variance.

    The same estimate cutechess-cli prints as ``Elo difference: X +/- Y``; None where it is unbounded.
    """
    if wins + draws + losses == 0:
        return None, None
    mean, stdev = _score_mean_stdev(wins, draws, losses)

    def to_elo(p: float) -> float | None:
        if p <= 0.0 or p >= 1.0:
            return None
        return -400.0 * math.log10(1.0 / p - 1.0)

    diff = to_elo(mean)
    upper, lower = to_elo(mean + Z95 * stdev), to_elo(mean - Z95 * stdev)
    margin = None if diff is None or upper is None or lower is None else (upper - lower) / 2.0
    return diff, margin


def parse_anchors(text: str) -> dict[int, float]:
    """``paper``, ``paper-code`` or ``LEVEL=ELO,...`` (Stockfish skill level to rating)."""
    text = text.strip()
    if text in ANCHOR_TABLES:
        return dict(ANCHOR_TABLES[text])
    anchors: dict[int, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        level, eq, elo = item.partition("=")
        try:
            if not eq:
                raise ValueError
            level_n, elo_f = int(level), float(elo)
        except ValueError:
            raise RatingError(
                f"--anchors: {item!r} is not LEVEL=ELO; use paper, paper-code or e.g. 1=1552,3=1842"
            ) from None
        if not 0 <= level_n <= 20:
            raise RatingError(f"--anchors: Stockfish skill level {level_n} is not in 0..20")
        if not math.isfinite(elo_f):
            raise RatingError(f"--anchors: {item!r} needs a finite rating")
        anchors[level_n] = elo_f
    if not anchors:
        raise RatingError("--anchors: no anchors given; use paper, paper-code or LEVEL=ELO,...")
    return anchors
