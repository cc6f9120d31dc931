"""``transcend train``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("train")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True, help="Prepared dataset directory.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run directory.")
@click.option("--preset", default="tiny", show_default=True, help="Model preset: paper-50m, small or tiny.")
@click.option("--max-iters", type=click.IntRange(1), default=None, help="Number of optimizer steps.")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Sequences per micro-batch.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_command(data_dir, out_dir, preset, max_iters, batch_size, resume, device, quiet) -> None:
    """Train a GPT on a prepared dataset; writes model.safetensors, checkpoint.pt and log.jsonl."""
    import dataclasses

    from ..model import preset as get_preset
    from ..training import TrainConfig, train

    model_config = get_preset(preset)
    overrides = {k: v for k, v in {"max_iters": max_iters, "batch_size": batch_size}.items() if v is not None}
    cfg = dataclasses.replace(TrainConfig(), **overrides)
    record = train(data_dir, out_dir, model_config, cfg, device=device, resume=resume, progress=not quiet)
    click.echo(f"step {record.get('step')}: loss {record.get('loss')}, val_loss {record.get('val_loss')}; run in {out_dir}")
