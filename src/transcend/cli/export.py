"""``transcend export``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The .onnx file to write.")
def export_command(source, output) -> None:
    """Export SOURCE (a training run directory or a nanoGPT ckpt.pt) to one ONNX file with a KV cache."""
    from ..export import export

    model = export(source, output)
    click.echo(f"exported {model.num_params():,} parameters to {output}")
