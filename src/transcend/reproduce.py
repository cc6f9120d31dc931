"""``transcend reproduce``: the whole experiment in one directory, stage by stage, resumable.

Stages, each skipped when its output is complete and continued when it was interrupted:

1. ``experts.pgn``: games between the scale's experts (``data synth``, which continues a partial file),
   or, with ``--pgn``, nothing (the lichess dumps are read as they are).
2. ``anchors/``: each expert against a uniform random mover (synth again), which gives each expert a
   rating on one scale: Elo above the random mover, from its score (``anchor_elo``).
3. ``data/``: the prepared dataset (``data prepare``; complete when ``meta.json`` exists).
4. ``run/``: training (complete at ``max_iters``; continued with the run's checkpoint).
5. ``model.onnx``: the export, with its card (complete when newer than the run's weights).
6. the tournament in OUT itself: the model at each temperature against the experts, the random
   mover and Stockfish levels; ``results.json`` and ``ratings.png`` (a journal of finished games is
   kept, so an interrupted tournament plays only the missing ones).

The scales: ``smoke`` (minutes: tiny model, a few games, what the test suite runs), ``cpu`` (the
bundled model's recipe on this project's 2-core CPU), ``paper`` (the paper's 50M model and its
evaluation protocol; wants a GPU and lichess data via ``--pgn FILES --max-elo N``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import TranscendError

RANDOM = "random"


class ReproduceError(TranscendError):
    """A reproduction that cannot start (unknown scale, missing lichess data for the paper scale)."""


@dataclass(frozen=True)
class Scale:
    """One size of the experiment: data, training recipe and tournament."""

    name: str
    experts: tuple[str, ...]
    """Expert specs whose games make the data, strongest first (``--pgn`` replaces them)."""
    games: int
    random_plies: int
    max_plies: int
    preset: str
    """Training preset (``transcend.training.PRESETS``), then ``training`` and ``model`` overrides."""
    training: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    anchor_games: int = 100
    """Games of each expert against the random mover, for its rating."""
    temperatures: tuple[float, ...] = (0.001, 0.1, 0.5, 1.0)
    tournament_games: int = 200
    stockfish_levels: tuple[int, ...] = ()
    movetime_ms: int = 100
    max_moves: int | None = 200
    paper_protocol: bool = False
    """Play the paper's protocol (Stockfish levels 1, 3, 5 with its anchors) instead of the experts."""


_CPU_EXPERTS = ("eps=0.2+stockfish:depth=1", "eps=0.35+stockfish:depth=1", "eps=0.5+stockfish:depth=1")

SCALES: dict[str, Scale] = {
    "smoke": Scale(
        "smoke", experts=("eps=0.3+stockfish:nodes=1", "eps=0.7+stockfish:nodes=1"), games=60, random_plies=2,
        max_plies=120, preset="tiny",
        training=dict(batch_size=4, max_iters=40, warmup_iters=5, lr_decay_iters=40, eval_interval=40,
                      eval_iters=2, checkpoint_interval=20, legal_prompts=4),
        model=dict(block_size=256), anchor_games=6, temperatures=(0.001, 1.0), tournament_games=2,
        movetime_ms=50, max_moves=40),
    "cpu": Scale(
        "cpu", experts=_CPU_EXPERTS, games=20000, random_plies=2, max_plies=400, preset="default-model",
        anchor_games=200, stockfish_levels=(0, 1)),
    "paper": Scale(
        "paper", experts=(), games=0, random_plies=0, max_plies=0, preset="paper-50m", anchor_games=0,
        temperatures=(0.001, 0.01, 0.1, 0.3, 0.5, 0.75, 1.0, 1.5), tournament_games=100, max_moves=90,
        paper_protocol=True),
}


@dataclass(frozen=True)
class Plan:
    """What one ``reproduce`` call does: a scale, its output directory and the data source."""

    out: Path
    scale: Scale
    pgn: tuple[Path, ...] = ()
    max_elo: int | None = None
    workers: int = 1
    concurrency: int = 1
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.scale.name == "paper" and not self.pgn:
            raise ReproduceError("--scale paper trains on lichess games: give --pgn FILES (and --max-elo N)")
        if self.pgn and not self.scale.paper_protocol and self.max_elo is None:
            raise ReproduceError("--pgn needs --max-elo N (the rating cap of the players to learn from)")
        missing = [str(p) for p in self.pgn if not Path(p).is_file()]
        if missing:
            raise ReproduceError(f"{missing[0]}: no such PGN file")


def plan_for(out: Path, scale: str, pgn: tuple[Path, ...] = (), max_elo: int | None = None, workers: int = 1,
             concurrency: int = 1, device: str = "auto") -> Plan:
    if scale not in SCALES:
        raise ReproduceError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    return Plan(Path(out), SCALES[scale], tuple(Path(p) for p in pgn), max_elo, workers, concurrency, device)


def anchor_elo(wins: int, draws: int, losses: int) -> float:
    """Elo above the random mover implied by a score against it, with half a game added to each side
    (so a perfect score stays finite: 200 wins of 200 is +1041)."""
    n = wins + draws + losses
    score = (wins + 0.5 * draws + 0.5) / (n + 1)
    return round(-400.0 * math.log10(1.0 / score - 1.0), 1)


# ----------------------------------------------------------------------------------------------
# The stages

Report = Callable[[str], None]


def stage_experts(plan: Plan, report: Report) -> Path:
    from .data.synth import SynthConfig, synth

    path = plan.out / "experts.pgn"
    s = plan.scale
    config = SynthConfig(experts=s.experts, games=s.games, random_plies=s.random_plies, max_plies=s.max_plies)
    done = synth(config, path, workers=plan.workers, progress=True)
    report(f"experts: {done.total} games in {path}" + (f" ({done.played} played now)" if done.played else ""))
    return path


def stage_anchors(plan: Plan, report: Report) -> dict[str, float]:
    """Each expert against the random mover: its Elo above the random mover (the rating anchors)."""
    from .data.synth import SynthConfig, pairing_scores, synth

    anchors: dict[str, float] = {}
    s = plan.scale
    for i, expert in enumerate(s.experts, 1):
        path = plan.out / "anchors" / f"expert-{i}.pgn"
        config = SynthConfig(experts=(expert, RANDOM), games=s.anchor_games, seed=7, max_plies=s.max_plies)
        synth(config, path, workers=plan.workers, progress=True)
        (p,) = pairing_scores(path, config.experts)
        anchors[expert] = anchor_elo(p.wins, p.draws, p.losses)
        report(f"anchor: {expert} against random +{p.wins} ={p.draws} -{p.losses} ({p.score:.1%}): "
               f"Elo {anchors[expert]:+.0f} above random")
    (plan.out / "anchors" / "anchors.json").write_text(json.dumps(anchors, indent=2) + "\n")
    return anchors


def stage_prepare(plan: Plan, sources: list[Path], report: Report) -> Path:
    from .data import GameFilter, prepare

    data = plan.out / "data"
    if (data / "meta.json").is_file():
        report(f"data: {data} is complete")
        return data
    stats = prepare([str(p) for p in sources], data, GameFilter(max_elo=plan.max_elo), workers=plan.workers,
                    progress=True)
    report(f"data: kept {stats.games_kept} of {stats.games_read} games, "
           f"{stats.symbols_train + stats.symbols_val} symbols")
    return data


def training_configs(scale: Scale):
    from .training import preset

    model_cfg, train_cfg = preset(scale.preset)
    return dataclasses.replace(model_cfg, **scale.model), dataclasses.replace(train_cfg, **scale.training)


def stage_train(plan: Plan, data: Path, report: Report) -> Path:
    import torch

    from .training import train
    from .training.checkpoint import CHECKPOINT, read_log

    run = plan.out / "run"
    model_cfg, train_cfg = training_configs(plan.scale)
    log = read_log(run)
    if log and log[-1].get("step") == train_cfg.max_iters and (run / "model.safetensors").is_file():
        report(f"train: {run} is complete at step {train_cfg.max_iters}")
        return run
    device = plan.device if plan.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    record = train(data, run, model_cfg, train_cfg, device=device, resume=(run / CHECKPOINT).is_file())
    report(f"train: step {record['step']}, val loss {record.get('val_loss')}")
    return run


def stage_export(plan: Plan, run: Path, report: Report) -> Path:
    from .export import export

    model = plan.out / "model.onnx"
    weights = run / "model.safetensors"
    if model.is_file() and model.stat().st_mtime >= weights.stat().st_mtime:
        report(f"export: {model} is up to date")
        return model
    export(run, model)
    report(f"export: {model}")
    return model


def gauntlet_config(plan: Plan, model: Path, anchors: dict[str, float]):
    """The tournament of a scale: the experts (anchored), the random mover (Elo 0), Stockfish levels."""
    from .experts import find_stockfish
    from .tournaments import config as g
    from .tournaments.match import GameRules, MoveLimit
    from .tournaments.ratings import parse_anchors

    s = plan.scale
    level_anchors = parse_anchors("paper")
    if s.paper_protocol:
        opponents = [g.level_opponent(level, level_anchors) for level in g.PAPER_LEVELS]
    else:  # the experts the data came from (none with --pgn), then the random mover
        opponents = [g.parse_opponent(f"{expert}@{elo}") for expert, elo in anchors.items()]
        opponents += [g.parse_opponent(f"{RANDOM}@0")]
        opponents += [g.Opponent(f"stockfish level {level}", g.OpponentKind.LEVEL, str(level)) for level in s.stockfish_levels]
    return g.GauntletConfig(
        models=tuple(g.model_entries([model])), temperatures=s.temperatures, opponents=tuple(opponents),
        games=s.tournament_games, rules=GameRules(limit=MoveLimit(movetime_ms=s.movetime_ms), max_moves=s.max_moves),
        seed=0, stockfish=find_stockfish(), protocol="paper" if s.paper_protocol else None,
        anchors=level_anchors if s.paper_protocol else {})


def stage_tournament(plan: Plan, model: Path, anchors: dict[str, float], report: Report) -> dict:
    from .tournaments.runner import run_gauntlet
    from .tournaments.plots import plot_ratings
    from .tournaments.report import format_table, summarize, write_results

    config = gauntlet_config(plan, model, anchors)
    records = run_gauntlet(config, plan.out, concurrency=plan.concurrency, resume=True, progress=True)
    summary = summarize(config, records)
    write_results(plan.out, summary)
    plot_ratings(summary, plan.out / "ratings.png")
    report(format_table(summary))
    return summary


def reproduce(plan: Plan, report: Report) -> dict:
    """Run every stage of ``plan`` in order; returns the tournament summary (``results.json``)."""
    plan.out.mkdir(parents=True, exist_ok=True)
    if plan.pgn:
        sources, anchors = list(plan.pgn), {}
    else:
        sources, anchors = [stage_experts(plan, report)], stage_anchors(plan, report)
    data = stage_prepare(plan, sources, report)
    run = stage_train(plan, data, report)
    model = stage_export(plan, run, report)
    return stage_tournament(plan, model, anchors, report)
