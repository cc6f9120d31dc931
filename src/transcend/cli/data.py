"""``transcend data ...``: PGN to token datasets, and games generated between experts."""

from __future__ import annotations

from pathlib import Path

import click

from ..data.filters import TIME_CONTROL_CLASSES


def _comma_list(ctx, param, values: tuple[str, ...]) -> tuple[str, ...]:
    """Repeatable options that also take comma-separated values: --time-control blitz,rapid."""
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


@click.group()
def data() -> None:
    """Build training data: `prepare` PGN files into a dataset, `synth` games between experts."""


@data.command("prepare")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset directory to write (train.bin, val.bin, train_games.npy, val_games.npy, meta.json).")
@click.option("--max-elo", type=click.IntRange(0), default=None, help="Keep games whose players are rated <= N.")
@click.option("--min-elo", type=click.IntRange(0), default=None, help="Keep games whose players are rated >= N.")
@click.option("--elo-rule", type=click.Choice(["both", "either"]), default="both", show_default=True,
              help="Whether both players (the paper's rule) or at least one must be within the rating bounds.")
@click.option("--min-moves", type=click.IntRange(0), default=1, show_default=True,
              help="Minimum game length in plies (a move by either side counts one).")
@click.option("--max-moves", type=click.IntRange(1), default=1000, show_default=True,
              help="Maximum game length in plies; longer games are skipped.")
@click.option("--time-control", "time_controls", multiple=True, callback=_comma_list, metavar="CLASS",
              help=f"Keep only these lichess speed classes ({', '.join(TIME_CONTROL_CLASSES)}), from the "
                   "TimeControl tag by lichess's rule (base + 40 x increment seconds). Repeatable or comma-separated.")
@click.option("--termination", "terminations", multiple=True, callback=_comma_list, metavar="NAME",
              help="Keep only games with this Termination tag (lichess: normal, time-forfeit, abandoned, "
                   "rules-infraction, unterminated; case and -/space ignored). Repeatable or comma-separated.")
@click.option("--val-fraction", type=click.FloatRange(0.0, 1.0), default=0.01, show_default=True,
              help="Share of games (chosen by a hash of each game, so always the same ones) written to val.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Processes that parse games; the output is the same for any number.")
@click.option("--validate", is_flag=True,
              help="Replay every game with python-chess: skip illegal moves and rewrite SAN as python-chess "
                   "writes it (about 50x slower).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def prepare_command(inputs, out_dir, max_elo, min_elo, elo_rule, min_moves, max_moves, time_controls, terminations,
                    val_fraction, workers, validate, quiet) -> None:
    """Stream PGN files into the paper's transcript tokens.

    INPUTS are .pgn files, compressed or not (zstd, bzip2 and gzip are recognised by their content,
    so lichess's .pgn.zst dumps are read as they are), or - for stdin. Standard games from the
    initial position only; every skipped game is counted by reason in meta.json. A damaged
    compressed file ends that input with a warning; the games read before the damage are kept.
    """
    from ..data import GameFilter, prepare

    game_filter = GameFilter(max_elo=max_elo, min_elo=min_elo, elo_rule=elo_rule, min_moves=min_moves,
                             max_moves=max_moves, time_controls=frozenset(time_controls),
                             terminations=frozenset(terminations))
    stats = prepare(list(inputs), out_dir, game_filter, val_fraction=val_fraction, progress=not quiet,
                    workers=workers, validate=validate)
    for error in stats.input_errors:
        click.echo(f"transcend: warning: {error}", err=True)
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(stats.rejected.items())) or "none"
    rate = stats.games_read / stats.seconds if stats.seconds else 0.0
    click.echo(f"read {stats.games_read} games in {stats.seconds:.1f} s ({rate:,.0f} games/s), kept "
               f"{stats.games_kept} (rejected: {rejected}); {stats.symbols_train} train + {stats.symbols_val} "
               f"val symbols in {out_dir}")


@data.command("synth")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PGN file to write; an existing one written by synth with the same settings is continued.")
@click.option("--games", type=click.IntRange(1), required=True, help="Number of games the file should hold.")
@click.option("--expert", "experts", multiple=True, required=True, metavar="SPEC",
              help="An expert: stockfish[:skill=N,depth=N,nodes=N,movetime=MS], random, or eps=P+SPEC. "
                   "Repeat for a round robin; one expert plays itself.")
@click.option("--elo", "elos", multiple=True, metavar="SPEC=RATING",
              help="Known rating of an expert, written as WhiteElo / BlackElo. Repeatable.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Processes playing games, each with its own Stockfish.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Games are a function of the seed and their number (with deterministic experts).")
@click.option("--random-plies", type=click.IntRange(0), default=0, show_default=True,
              help="Uniformly random opening plies before the experts play, for diversity.")
@click.option("--max-plies", type=click.IntRange(1), default=1000, show_default=True,
              help="Stop a game after this many plies and score it a draw (the paper's evaluation: 180).")
@click.option("--stockfish", "stockfish_path", default=None, help="Stockfish binary (default: on PATH).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth_command(out_path, games, experts, elos, workers, seed, random_plies, max_plies, stockfish_path,
                  quiet) -> None:
    """Generate games between experts of known strength, as PGN that `data prepare` reads.

    Experts are paired round robin, each pair playing two games with colours swapped. Games end by
    the rules (mate, stalemate, insufficient material, threefold repetition, fifty moves, as lichess
    ends them) or at --max-plies. Each game is appended whole and synced, so a killed run loses only
    the games in flight: run the same command again to finish the file.
    """
    from ..data.synth import SynthConfig, pairing_scores, parse_elos, synth
    from ..tournaments.ratings import score_interval

    config = SynthConfig(experts=tuple(experts), games=games, seed=seed, elos=parse_elos(elos, experts),
                         random_plies=random_plies, max_plies=max_plies, stockfish=stockfish_path)
    report = synth(config, out_path, workers=workers, progress=not quiet)
    rate = report.played / report.seconds if report.seconds else 0.0
    click.echo(f"played {report.played} games in {report.seconds:.1f} s ({rate:.1f} games/s); "
               f"{out_path} holds {report.total} games")
    for p in pairing_scores(out_path, config.experts):
        low, high = score_interval(p.wins, p.draws, p.losses)
        click.echo(f"  {p.first} vs {p.second}: +{p.wins} ={p.draws} -{p.losses}, score {p.score:.1%} "
                   f"(95% interval {low:.1%} to {high:.1%}) over {p.games} games")
