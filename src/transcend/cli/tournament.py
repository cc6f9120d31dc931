"""``transcend tournament``: gauntlets of the model against Stockfish levels and other engines."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

# Options that decide which games are played; with --resume and none of them given, the saved
# configuration is used as it is.
SCHEDULE_OPTIONS = (
    "models", "temperatures", "stockfish_levels", "opponents", "games", "movetime", "nodes", "tc", "protocol",
    "anchors", "book", "random_plies", "max_moves", "adjudicate_draw", "adjudicate_resign", "time_margin",
    "sampling", "seed", "stockfish",
)


def _numbers(text: str, kind, option: str) -> list:
    try:
        return [kind(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers", param_hint=option) from None


@click.command("tournament")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for games.pgn, games.jsonl (the journal), results.json, ratings.png.")
@click.option("--model", "models", type=click.Path(dir_okay=False, path_type=Path), multiple=True,
              help="Exported .onnx model; repeat for several (default: the bundled model).")
@click.option("--temperatures", help="Comma-separated temperatures [default: 0.001,0.1,1.0; "
                                      "paper: 0.001,0.01,0.1,0.3,0.5,0.75,1.0,1.5].")
@click.option("--stockfish-levels", help="Stockfish skill levels to play, under the gauntlet's time control "
                                         "[default: 1,3,5 unless --opponent is given].")
@click.option("--opponent", "opponents", multiple=True, metavar="SPEC[@ELO]",
              help="Another opponent: an expert spec (stockfish:skill=3,nodes=200, random, eps=0.2+stockfish:skill=1; "
                   "these keep their own limits) or uci:PATH for any UCI engine (gauntlet's limits). "
                   "@ELO anchors it for the ratings. Repeatable.")
@click.option("--games", type=click.IntRange(1), help="Games per model, temperature and opponent, colours "
                                                      "alternating [default: 10; paper: 100].")
@click.option("--movetime", type=click.IntRange(1), metavar="MS", help="Milliseconds a move [default: 100].")
@click.option("--nodes", type=click.IntRange(1), help="A node limit a move instead of time (reproducible).")
@click.option("--tc", help="A chess clock instead: [MOVES/]SECONDS[+INC], e.g. 10+0.1 or 40/60.")
@click.option("--concurrency", type=click.IntRange(1), default=1, show_default=True,
              help="Games played at once, each with its own engine processes.")
@click.option("--resume", is_flag=True, help="Continue an interrupted tournament in --out; finished games are kept.")
@click.option("--protocol", type=click.Choice(["paper"]),
              help="The paper's protocol as defaults: levels 1,3,5 at 0.1 s a move, 100 games, its 8 "
                   "temperatures, draw after full move 90, no openings. Options you give override them.")
@click.option("--anchors", default="paper", show_default=True, metavar="paper|paper-code|LEVEL=ELO,...",
              help="Ratings of the Stockfish levels for Glicko-2 and Elo.")
@click.option("--book", type=click.Path(dir_okay=False, path_type=Path),
              help="Openings from a .pgn (main lines) or .epd file; each opening is played with both colours.")
@click.option("--random-plies", type=click.IntRange(0), help="Start each game pair with N random plies "
                                                             "(after the book line, if any) [default: 0].")
@click.option("--max-moves", type=click.IntRange(1), help="Draw a game still going after full move N "
                                                          "[default: none; paper: 90].")
@click.option("--adjudicate-draw", metavar="movenumber=N,movecount=C,score=S",
              help="Draw when the last C reported evaluations are within S centipawns, after move N.")
@click.option("--adjudicate-resign", metavar="movecount=C,score=S",
              help="Loss for the side the last C reported evaluations put at least S centipawns down.")
@click.option("--time-margin", type=click.IntRange(0), default=1000, show_default=True, metavar="MS",
              help="Milliseconds an engine may go over its move time or clock before it loses on time.")
@click.option("--sampling", type=click.Choice(["move", "token"]), help="The engine's Sampling option "
                                                                        "[default: the engine's, move].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for engine seeds and random plies.")
@click.option("--stockfish", type=click.Path(dir_okay=False), help="Stockfish binary [default: on PATH].")
@click.option("--print-cutechess", is_flag=True, help="Print the same gauntlet as cutechess-cli commands; play nothing.")
@click.option("--print-fastchess", is_flag=True, help="Print the same gauntlet as fastchess commands; play nothing.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def tournament_command(ctx: click.Context, out_dir: Path, concurrency: int, resume: bool, print_cutechess: bool,
                       print_fastchess: bool, quiet: bool, **options) -> None:
    """Play the model at one or more temperatures against Stockfish levels and other engines.

    Writes games.pgn, results.json (W/D/L per pairing; Glicko-2 as the paper's Figure 1 and
    maximum-likelihood Elo per model and temperature; illegal-move, crash and time-loss counts, and the
    model's emergency random moves when the time control left it no time) and
    ratings.png (rating against temperature), and prints a table. Every finished game is saved at
    once: after an interruption, the same command with --resume plays only the games still missing.
    """
    from ..tournaments.config import load_config

    given = [name for name in SCHEDULE_OPTIONS if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE]
    saved = load_config(out_dir) if resume and out_dir.exists() else None
    config = saved if saved is not None and not given else build_config(**options)

    if print_cutechess or print_fastchess:
        _print_commands(config, out_dir, concurrency, print_cutechess, print_fastchess)
        return
    _play(config, out_dir, concurrency, resume, quiet)


def build_config(models, temperatures, stockfish_levels, opponents, games, movetime, nodes, tc, protocol, anchors,
                 book, random_plies, max_moves, adjudicate_draw, adjudicate_resign, time_margin, sampling, seed,
                 stockfish):
    from ..inference.runtime import BUNDLED_MODEL
    from ..experts import find_stockfish
    from ..tournaments import config as g
    from ..tournaments.match import DrawRule, GameRules, MoveLimit, ResignRule, TimeControl
    from ..tournaments.ratings import parse_anchors

    paper = protocol == "paper"
    if temperatures is None:
        temps = list(g.PAPER_TEMPERATURES) if paper else [0.001, 0.1, 1.0]
    else:
        temps = _numbers(temperatures, float, "--temperatures")
    if stockfish_levels is not None:
        levels = _numbers(stockfish_levels, int, "--stockfish-levels")
    else:
        levels = list(g.PAPER_LEVELS) if paper or not opponents else []
    if sum(x is not None for x in (movetime, nodes, tc)) > 1:
        raise click.UsageError("give one of --movetime, --nodes and --tc")
    if movetime is None and nodes is None and tc is None:
        movetime = g.PAPER_MOVETIME_MS
    limit = MoveLimit(movetime_ms=movetime, nodes=nodes, clock=TimeControl.parse(tc) if tc else None)
    anchor_table = parse_anchors(anchors)
    rivals = [g.level_opponent(level, anchor_table) for level in levels] + [g.parse_opponent(o) for o in opponents]
    needs_stockfish = any(o.kind is g.OpponentKind.LEVEL or (o.kind is g.OpponentKind.EXPERT and "stockfish" in o.spec)
                          for o in rivals)
    return g.GauntletConfig(
        models=tuple(g.model_entries(list(models) or [BUNDLED_MODEL])),
        temperatures=tuple(temps),
        opponents=tuple(rivals),
        games=games if games is not None else (g.PAPER_GAMES if paper else 10),
        rules=GameRules(
            limit=limit,
            max_moves=max_moves if max_moves is not None else (g.PAPER_MAX_MOVES if paper else None),
            draw=DrawRule.parse(adjudicate_draw) if adjudicate_draw else None,
            resign=ResignRule.parse(adjudicate_resign) if adjudicate_resign else None,
            time_margin_ms=time_margin,
        ),
        book=str(book.resolve()) if book else None,
        random_plies=random_plies or 0,
        sampling=sampling,
        seed=seed,
        stockfish=find_stockfish(stockfish) if needs_stockfish else None,
        protocol=protocol,
        anchors=anchor_table,
    )


def _print_commands(config, out_dir: Path, concurrency: int, cutechess: bool, fastchess: bool) -> None:
    from ..tournaments.books import load_book
    from ..tournaments.commands import gauntlet_commands, write_openings_pgn

    openings = None
    if config.random_plies:
        out_dir.mkdir(parents=True, exist_ok=True)
        book = load_book(config.book) if config.book else None
        openings = write_openings_pgn(config, book, out_dir / "openings.pgn")
    for tool, wanted in (("cutechess-cli", cutechess), ("fastchess", fastchess)):
        if wanted:
            click.echo("\n".join(gauntlet_commands(config, out_dir, tool, concurrency, openings)))


def _play(config, out_dir: Path, concurrency: int, resume: bool, quiet: bool) -> None:
    from ..tournaments.runner import run_gauntlet
    from ..tournaments.journal import Journal
    from ..tournaments.plots import plot_ratings
    from ..tournaments.report import format_table, summarize, write_results

    try:
        records = run_gauntlet(config, out_dir, concurrency=concurrency, resume=resume, progress=not quiet)
    except KeyboardInterrupt:
        summary = summarize(config, Journal(out_dir).load())
        write_results(out_dir, summary)
        click.echo(f"interrupted: {summary['games_played']} of {summary['games_scheduled']} games kept in "
                   f"{out_dir}; continue with --resume", err=True)
        raise
    summary = summarize(config, records)
    click.echo(format_table(summary))
    results = write_results(out_dir, summary)
    figure = plot_ratings(summary, out_dir / "ratings.png")
    click.echo(f"\nwrote {out_dir / 'games.pgn'}, {results}" + (f", {figure}" if figure else ""))
