"""``transcend info``: a model's card (its data, training and measured results)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("info")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--json", "as_json", is_flag=True,
              help="Print the card as one JSON object (its `experts` field: the data's expert specs, strongest first).")
def info_command(model: Path | None, as_json: bool) -> None:
    """Print the card of an exported MODEL (.onnx; the bundled model when MODEL is left out).

    The card is written by `transcend export` into the ONNX file: the model's size, the experts and
    games its data came from, its training steps, tokens and validation loss, and the results
    measured with it (score, games and 95% interval against each opponent).
    """
    from ..inference.runtime import BUNDLED_MODEL, OnnxModel

    path = model or BUNDLED_MODEL
    info = OnnxModel(path, provider="cpu", threads=1).info
    card = dict(info.card) or {"format": 0, "model": {"config": info.config}}
    card.setdefault("model", {"config": info.config})
    if as_json:
        data = card.get("data", {})
        click.echo(json.dumps({"path": str(path), "quantization": info.quantization,
                               "experts": data.get("experts", []), **card}))
        return
    from ..card import format_card

    click.echo(format_card(card, f"{path}{'' if model else ' (bundled)'}; quantization {info.quantization}"))
