"""``transcend policy``: the model's probability of every legal move in a position."""

from __future__ import annotations

import json
from pathlib import Path

import chess
import click

from ..errors import TranscendError
from ..transcript import parse_uci_move


class PositionError(TranscendError):
    """A FEN or a move list that does not give a legal position."""


def board_from(fen: str | None, moves: str) -> chess.Board:
    """The position after the UCI ``moves`` from ``fen`` (the standard start when None)."""
    try:
        board = chess.Board(fen) if fen else chess.Board()
    except ValueError as exc:
        raise PositionError(f"bad FEN {fen!r}: {exc}") from None
    for ply, text in enumerate(moves.split(), start=1):
        try:
            board.push(parse_uci_move(board, text))
        except chess.IllegalMoveError:
            raise PositionError(f"move {ply} {text!r} is not legal in {board.fen()}") from None
        except chess.InvalidMoveError:
            raise PositionError(f"move {ply} {text!r} is not a UCI move (like e2e4 or e7e8q)") from None
    return board


@click.command("policy")
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("--moves", default="", help='The game so far as UCI moves: "e2e4 e7e5 g1f3".')
@click.option("--fen", default=None, help="Start from this position instead of the standard start.")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Also show softmax(log p / T) over the legal moves (what the engine samples from).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object {uci_move: probability}.")
@click.option("--provider", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True,
              help="onnxruntime provider (for an .onnx MODEL).")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="CPU threads (0: the runtime's default).")
def policy_command(model, moves, fen, temperature, as_json, provider, threads) -> None:
    """Print every legal move with the model's probability, most probable first.

    MODEL is an exported .onnx file (run by onnxruntime; the bundled model when left out) or a training run directory, .safetensors or
    nanoGPT ckpt.pt (run by PyTorch). The probability of a move is the product of the probabilities
    of its SAN symbols and of the space after it, given the game's transcript.
    """
    from ..inference.policy import MovePolicy
    from ..inference.runtime import BUNDLED_MODEL, OnnxModel
    from ..sampling import temperature_softmax

    board = board_from(fen, moves)
    model = model or BUNDLED_MODEL
    if model.suffix == ".onnx":
        policy = MovePolicy(OnnxModel(model, provider=provider, threads=threads))
    else:
        from ..inference.torch_backend import torch_move_policy

        policy = torch_move_policy(model, threads=threads)
    scores = policy.score_legal_moves(board)
    if as_json:
        ranked = scores.ranked()
        click.echo(json.dumps({move.uci(): probability for move, _, probability in ranked}))
        return
    if not scores.moves:
        click.echo("no legal moves (the game is over)")
        return
    adjusted = dict(zip(scores.moves, temperature_softmax(scores.log_probs, temperature)))
    click.echo(f"prompt: {scores.prompt}")
    click.echo(f"{'move':<7} {'san':<8} {'p':>10} {f'p(T={temperature:g})':>12}")
    for move, san, probability in scores.ranked():
        click.echo(f"{move.uci():<7} {san:<8} {probability:>10.6f} {adjusted[move]:>12.6f}")
    total = sum(probability for _, _, probability in scores.ranked())
    click.echo(f"legal moves: {len(scores.moves)}; their total probability: {total:.6f}")
    if scores.wdl is not None:
        win, draw, loss = scores.wdl
        click.echo(f"value head, for the side to move: win {win:.3f}, draw {draw:.3f}, loss {loss:.3f}")
