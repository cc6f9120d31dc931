"""``transcend reproduce``: the whole experiment, from data to the rating plot, in one directory."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("reproduce")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--scale", type=click.Choice(["smoke", "cpu", "paper"]), default="smoke", show_default=True,
              help="smoke: minutes, a tiny model (what the tests run); cpu: the bundled model's recipe "
                   "(hours on a 2-core CPU); paper: the paper's 50M model and protocol (a GPU, lichess data).")
@click.option("--pgn", "pgn", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Train on these PGN files (lichess dumps, .pgn.zst) instead of synth expert games. Repeatable.")
@click.option("--max-elo", type=click.IntRange(1), default=None,
              help="With --pgn: keep games whose two players are rated at most this (the paper's cap).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Processes for data generation and preparation.")
@click.option("--concurrency", type=click.IntRange(1), default=1, show_default=True,
              help="Tournament games played at once.")
@click.option("--device", default="auto", show_default=True, help="Training device: auto, cpu, cuda or cuda:N.")
def reproduce_command(out, scale, pgn, max_elo, workers, concurrency, device) -> None:
    """Run the experiment in OUT: expert games, anchors, data, training, export, tournament, plot.

    Every stage is skipped when its output in OUT is complete and continued when it was interrupted,
    so the same command after Ctrl-C (or a kill) picks up where it stopped, and after a finished run
    it only prints the results again. OUT ends with experts.pgn, anchors/ (each expert against a
    random mover, which rates it), data/, run/, model.onnx (with its card), games.pgn,
    results.json and ratings.png (rating against temperature: the paper's Figure 1 for these experts).
    """
    from ..reproduce import plan_for, reproduce

    plan = plan_for(out, scale, tuple(pgn), max_elo, workers, concurrency, device)
    reproduce(plan, click.echo)
    click.echo(f"\nresults in {out / 'results.json'}, {out / 'ratings.png'}; model {out / 'model.onnx'}")
