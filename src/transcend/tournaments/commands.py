"""The same gauntlet as cutechess-cli and fastchess command lines, one per model and temperature.

Both tools take engines with ``-engine``, play ``-tournament gauntlet`` (the first engine against the
rest), and share the adjudication syntax. What they cannot express is said in ``#`` comment lines:
experts that are not UCI engines (``random``, ``eps=...``), random-plies openings (these are written to
an ``openings.pgn`` book that the command then uses), and per-game engine seeds.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import chess.pgn

from ..experts import DEFAULT_MOVETIME_MS, find_stockfish, parse_expert_spec, stockfish_options
from .books import opening_for
from .config import GauntletConfig, Opponent, OpponentKind, model_player_name
from .match import HANG_TIMEOUT_S


def _seconds(ms: int) -> str:
    return f"{ms / 1000:g}"


def _limit_options(config: GauntletConfig) -> list[str]:
    limit = config.rules.limit
    margin = [f"timemargin={config.rules.time_margin_ms}"]
    if limit.clock is not None:
        return [f"tc={limit.clock}", *margin]
    if limit.nodes is not None:
        return ["tc=inf", f"nodes={limit.nodes}"]
    return [f"st={_seconds(limit.movetime_ms)}", *margin]


def _opponent_engine(config: GauntletConfig, opponent: Opponent, tool: str) -> list[str] | None:
    """Engine options for one opponent; None when the tool cannot play it."""
    if opponent.kind is OpponentKind.UCI:
        return [f"name={opponent.name}", f"cmd={opponent.spec}", *_limit_options(config)]
    if opponent.kind is OpponentKind.LEVEL:
        settings, limit = {"skill": int(opponent.spec)}, _limit_options(config)
    else:
        spec = parse_expert_spec(opponent.spec)
        if spec.kind != "stockfish" or spec.eps:
            return None
        settings = spec.settings
        if not any(k in settings for k in ("depth", "nodes", "movetime")):
            limit = [f"st={_seconds(DEFAULT_MOVETIME_MS)}"]  # an expert spec's default
        else:
            limit = ["tc=inf"] if "movetime" not in settings else [f"st={_seconds(settings['movetime'])}"]
            limit += [f"{k}={settings[k]}" for k in ("depth", "nodes") if k in settings]
            if tool == "fastchess" and "depth" in settings:
                limit = [x.replace("depth=", "plies=") for x in limit]
    options = [f"option.{name}={value}" for name, value in stockfish_options(settings).items()]
    return [f"name={opponent.name}", f"cmd={find_stockfish(config.stockfish)}", *options, *limit]


def _model_engine(config: GauntletConfig, model_index: int, temperature: float, tool: str) -> list[str]:
    model = config.models[model_index]
    options = [f"name={model_player_name(model, temperature)}", "cmd=transcend-uci"]
    args = ["--model", model.path, "--temperature", f"{temperature:g}"]
    if tool == "cutechess-cli":
        options += [f"arg={a}" for a in args]
    else:
        options.append("args=" + " ".join(shlex.quote(a) for a in args))
    if config.sampling:
        options.append(f"option.Sampling={config.sampling}")
    if config.rules.limit.clock is None:  # transcend tournament gives the model no limit here
        return options + [f"st={HANG_TIMEOUT_S:g}"]
    return options + _limit_options(config)


def write_openings_pgn(config: GauntletConfig, book, path: Path) -> Path:
    """The exact openings of the gauntlet (book lines and random plies), one per game pair, as PGN."""
    pairs = (config.games + 1) // 2
    with open(path, "w", encoding="utf-8") as f:
        for pair in range(pairs):
            board = opening_for(pair, book, config.random_plies, config.seed)
            game = chess.pgn.Game.from_board(board)
            game.headers["Event"] = f"transcend opening {pair + 1}"
            print(game, file=f, end="\n\n")
    return path


def gauntlet_commands(config: GauntletConfig, out_dir: Path, tool: str, concurrency: int,
                      openings_pgn: Path | None = None) -> list[str]:
    """Shell command lines for ``tool`` (``cutechess-cli`` or ``fastchess``), with ``#`` notes."""
    lines: list[str] = []
    opponents = []
    for opponent in config.opponents:
        engine = _opponent_engine(config, opponent, tool)
        if engine is None:
            lines.append(f"# {opponent.name}: not a UCI engine, so {tool} cannot play it; left out")
        else:
            opponents.append(engine)
    if not opponents:
        return lines + [f"# no opponent that {tool} can play"]
    if config.random_plies:
        if openings_pgn is None:
            raise ValueError("random plies need the openings written to a PGN book first (write_openings_pgn)")
        lines.append(f"# the random-plies openings are in {openings_pgn}, written for these commands")
    lines.append("# engine seeds are not set per game as transcend tournament does; games will differ")
    rounds, games = (config.games // 2, 2) if config.games % 2 == 0 else (config.games, 1)
    for m, model in enumerate(config.models):
        for t in config.temperatures:
            argv = [tool, "-engine", *_model_engine(config, m, t, tool)]
            for engine in opponents:
                argv += ["-engine", *engine]
            argv += ["-each", "proto=uci", "-tournament", "gauntlet", "-rounds", str(rounds), "-games", str(games)]
            if games == 2:
                argv.append("-repeat")
            argv += ["-concurrency", str(concurrency), "-recover"]
            if config.rules.max_moves is not None:
                argv += ["-maxmoves", str(config.rules.max_moves)]
            if config.rules.draw is not None:
                argv += ["-draw", *str(config.rules.draw).split()]
            if config.rules.resign is not None:
                argv += ["-resign", *str(config.rules.resign).split()]
            book_file = openings_pgn if config.random_plies else (Path(config.book) if config.book else None)
            if book_file is not None:
                fmt = "epd" if book_file.suffix.lower() == ".epd" else "pgn"
                argv += ["-openings", f"file={book_file}", f"format={fmt}", "order=sequential"]
            pgn_out = out_dir / f"{tool}-{model.name.replace('/', '-')}-T{t:g}.pgn"
            argv += ["-pgnout", str(pgn_out)] if tool == "cutechess-cli" else ["-pgnout", f"file={pgn_out}"]
            lines.append(shlex.join(argv))
    return lines
