"""``transcend export``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The .onnx file to write.")
@click.option("--quantize", type=click.Choice(["none", "int8", "fp16"]), default="none", show_default=True,
              help="int8: dynamic quantization of the matrix products (smaller, faster on the CPU); "
                   "fp16: half precision (for CUDA).")
@click.option("--verify", is_flag=True,
              help="Compare onnxruntime with PyTorch on real game transcripts; print the largest logit "
                   "difference and fail past --tolerance.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=None,
              help="Largest logit difference --verify accepts [default: 1e-3; int8: 1.0; fp16: 0.1].")
@click.option("--card", "card_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A JSON object merged over the model card that export builds from the run (measured "
                   "results, notes, an expert order); `transcend info MODEL` prints the card.")
def export_command(source, output, quantize, verify, tolerance, card_file) -> None:
    """Export SOURCE (a training run directory or a nanoGPT ckpt.pt) to one ONNX file with a KV cache.

    The file carries its vocabulary and model config, so `transcend-uci --model FILE` needs nothing else.
    """
    from ..export import ExportError, export
    from ..export import verify as verify_export

    model = export(source, output, quantize=quantize, card_file=card_file)
    click.echo(f"exported {model.num_params():,} parameters to {output} (quantization: {quantize})")
    if verify:
        result = verify_export(model, output, tolerance, progress=True)
        click.echo(
            f"verify: largest logit difference {result.max_logit_diff:.3g} (tolerance {result.tolerance:g}); "
            f"largest move log-probability difference {result.max_move_logprob_diff:.3g}; "
            f"same most probable move in {result.top_move_agreement:.1%} of {result.positions} positions"
        )
        if not result.ok:
            raise ExportError(
                f"verification failed: largest logit difference {result.max_logit_diff:.3g} "
                f"exceeds the tolerance {result.tolerance:g}"
            )
