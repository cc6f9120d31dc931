"""``transcend data ...``: PGN to token datasets."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def data() -> None:
    """Build training data from PGN files."""


@data.command("prepare")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset directory to write (train.bin, val.bin, meta.json).")
@click.option("--max-elo", type=click.IntRange(0), default=None, help="Keep games whose both players are rated <= N.")
@click.option("--min-elo", type=click.IntRange(0), default=None, help="Keep games whose both players are rated >= N.")
@click.option("--min-moves", type=click.IntRange(1), default=1, show_default=True, help="Minimum number of plies.")
@click.option("--val-fraction", type=click.FloatRange(0.0, 1.0), default=0.01, show_default=True,
              help="Share of games (chosen by a hash of each game) written to val.bin.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def prepare_command(inputs, out_dir, max_elo, min_elo, min_moves, val_fraction, quiet) -> None:
    """Stream PGN files (.pgn, .pgn.zst, or - for stdin) into the paper's transcript tokens."""
    from ..data import GameFilter, prepare

    stats = prepare(list(inputs), out_dir, GameFilter(max_elo=max_elo, min_elo=min_elo, min_moves=min_moves),
                    val_fraction=val_fraction, progress=not quiet)
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(stats.rejected.items())) or "none"
    click.echo(f"read {stats.games_read} games, kept {stats.games_kept} (rejected: {rejected}); "
               f"{stats.symbols_train} train + {stats.symbols_val} val symbols in {out_dir}")
