"""From the journal's game records to ``results.json`` and the table printed on the terminal.

Ratings (docs/protocol.md, "Ratings") are per model and temperature, over its games against anchored opponents
(Stockfish levels with an anchor, ``--opponent SPEC@ELO``): Glicko-2 the paper's way, each game its
own rating period in schedule order (opponent by opponent, as the paper played them), and the
order-free maximum-likelihood Elo with a 95% interval.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..files import write_text
from .config import GauntletConfig, schedule
from .match import FAULT_KINDS
from .records import GameEntry
from .ratings import elo_difference, glicko2_sequential, max_likelihood_elo, score_interval

RESULTS_VERSION = 1


def _faults(records: Sequence[GameEntry], player: str) -> dict[str, int]:
    counts = dict.fromkeys(FAULT_KINDS, 0)
    for r in records:
        if r.fault and r.fault["player"] == player:
            counts[r.fault["kind"]] += 1
    return counts


def _random_moves(records: Sequence[GameEntry], player: str) -> int:
    """Emergency random moves (no time for the model)."""
    return sum(r.random_moves[player] for r in records)


def _round(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


def summarize(config: GauntletConfig, records: Sequence[GameEntry]) -> dict:
    """Everything ``results.json`` holds; records in any order (they are sorted by schedule index)."""
    records = sorted(records, key=lambda r: r.index)
    anchors = {o.name: o.elo for o in config.opponents}
    by_pairing: dict[tuple, list[GameEntry]] = {}
    for r in records:
        by_pairing.setdefault((r.model, r.temperature, r.opponent), []).append(r)
    pairings, ratings = [], []
    for model in config.models:
        for t in config.temperatures:
            rated = []
            for opponent in config.opponents:
                games = by_pairing.get((model.name, t, opponent.name), [])
                wins = sum(r.model_score == 1.0 for r in games)
                draws = sum(r.model_score == 0.5 for r in games)
                losses = len(games) - wins - draws
                diff, margin = elo_difference(wins, draws, losses)
                interval = score_interval(wins, draws, losses)
                pairings.append({
                    "model": model.name, "temperature": t, "opponent": opponent.name,
                    "opponent_elo": opponent.elo, "games": len(games), "wins": wins, "draws": draws,
                    "losses": losses, "score": wins + 0.5 * draws,
                    "score_fraction": round((wins + 0.5 * draws) / len(games), 4) if games else None,
                    "score_interval": None if interval is None else [round(x, 4) for x in interval],
                    "elo_difference": _round(diff), "elo_margin": _round(margin),
                    "model_faults": _faults(games, "model"), "opponent_faults": _faults(games, "opponent"),
                    "model_random_moves": _random_moves(games, "model"),
                })
                if opponent.elo is not None:
                    rated += [(opponent.elo, r.model_score) for r in games]
            glicko = glicko2_sequential(rated) if rated else None
            elo = max_likelihood_elo(rated)
            ratings.append({
                "model": model.name, "model_path": model.path, "temperature": t, "rated_games": len(rated),
                "glicko2": None if glicko is None else {
                    "rating": round(glicko.rating, 1), "rd": round(glicko.rd, 1),
                    "volatility": round(glicko.volatility, 6)},
                "elo": None if not rated else {"rating": _round(elo.rating), "low": _round(elo.low),
                                               "high": _round(elo.high)},
            })
    return {
        "format_version": RESULTS_VERSION,
        "games_scheduled": len(schedule(config)),
        "games_played": len(records),
        "complete": len(records) == len(schedule(config)),
        "anchors": {name: elo for name, elo in anchors.items() if elo is not None},
        "pairings": pairings,
        "ratings": ratings,
        "faults": {"model": _faults(records, "model"), "opponent": _faults(records, "opponent")},
        "random_moves": {"model": _random_moves(records, "model"), "opponent": _random_moves(records, "opponent")},
        "terminations": _count(r.reason for r in records),
        "config": config.to_json(),
    }


def _count(items) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))


def write_results(out_dir: Path, summary: dict) -> Path:
    path = out_dir / "results.json"
    write_text(path, json.dumps(summary, indent=2) + "\n")
    return path


def _fmt(x: float | None, width: int) -> str:
    return f"{'-' if x is None else f'{x:.0f}':>{width}}"


def _interval(bounds: list[float] | None) -> str:
    return "-" if bounds is None else f"{100 * bounds[0]:.0f}..{100 * bounds[1]:.0f}%"


def format_table(summary: dict) -> str:
    """Per pairing W/D/L and score, then the ratings per model and temperature."""
    lines = [f"{'model':<16} {'T':>6}  {'opponent':<26} {'games':>5} {'W':>4} {'D':>4} {'L':>4} "
             f"{'score':>6} {'95% interval':>13} {'elo diff':>14}  faults (model/opp)"]
    for p in summary["pairings"]:
        if not p["games"]:
            continue
        diff = "-" if p["elo_difference"] is None else f"{p['elo_difference'] + 0.0:+.0f}"
        if p["elo_margin"] is not None:
            diff += f" +/-{p['elo_margin']:.0f}"
        faults = "/".join(str(sum(p[k].values())) for k in ("model_faults", "opponent_faults"))
        lines.append(f"{p['model'][:16]:<16} {p['temperature']:>6g}  {p['opponent'][:26]:<26} {p['games']:>5} "
                     f"{p['wins']:>4} {p['draws']:>4} {p['losses']:>4} {100 * p['score_fraction']:>5.1f}% "
                     f"{_interval(p['score_interval']):>13} {diff:>14}  {faults}")
    rated = [r for r in summary["ratings"] if r["rated_games"]]
    if rated:
        lines += ["", f"{'model':<16} {'T':>6}  {'games':>5} {'Glicko-2':>9} {'RD':>5}   "
                      f"{'Elo (ML)':>8} {'95% interval':>15}"]
        for r in rated:
            g, e = r["glicko2"], r["elo"]
            interval = f"{_fmt(e['low'], 6).strip()}..{_fmt(e['high'], 6).strip()}"
            lines.append(f"{r['model'][:16]:<16} {r['temperature']:>6g}  {r['rated_games']:>5} "
                         f"{g['rating']:>9.0f} {g['rd']:>5.0f}   {_fmt(e['rating'], 8)} {interval:>15}")
    else:
        lines += ["", "no ratings: no opponent has an anchor rating (--anchors, or --opponent SPEC@ELO)"]
    random_moves = summary["random_moves"]["model"]
    if random_moves:
        lines += ["", f"warning: {random_moves} of the model's moves were random emergency moves (no time for the "
                      "model at this time control): the ratings understate the model"]
    if not summary["complete"]:
        lines += ["", f"{summary['games_played']} of {summary['games_scheduled']} games played "
                      "(continue with --resume)"]
    return "\n".join(lines)
