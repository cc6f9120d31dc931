"""``transcend train``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("train")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True,
              help="Prepared dataset directory (from `transcend data prepare`).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run directory: config.json, model.safetensors, checkpoint.pt, log.jsonl.")
@click.option("--preset", default=None, help="Model and training recipe: paper-50m, small or tiny (the default).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML or JSON config file ([model], [training], optional preset = NAME); see configs/.")
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Override one model or training setting, e.g. --set learning_rate=6e-4 --set n_layer=4. Repeatable.")
@click.option("--max-iters", type=click.IntRange(1), default=None, help="Optimizer steps to train to (in total).")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Sequences per micro-batch and process.")
@click.option("--grad-accum", type=click.IntRange(1), default=None,
              help="Micro-batches per optimizer step, over all processes.")
@click.option("--value-head/--no-value-head", default=None,
              help="Add the win/draw/loss head with its auxiliary loss (needs the dataset's game index).")
@click.option("--compile/--no-compile", "compile_model", default=None, help="torch.compile the model.")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its checkpoint, with its own config unless --preset/--config is given.")
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when available), cpu, cuda or cuda:N; under torchrun, cuda means each process's own GPU.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch (default: torch's choice).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_command(data_dir, out_dir, preset, config_file, overrides, max_iters, batch_size, grad_accum, value_head,
                  compile_model, resume, device, threads, quiet) -> None:
    """Train a GPT on a prepared dataset, or continue a run with --resume.

    Settings come from a preset or a config file, then --set and the flags below. The same command
    runs under `torchrun --nproc_per_node N` for DDP over N GPUs (or N CPU processes with gloo).
    Ctrl-C stops after the current step with a checkpoint; a killed run resumes from its last one.
    Every logged step goes to RUN/log.jsonl (loss, lr, tokens_per_s, mfu; val_loss, legal_move_rate,
    value_loss and value_acc at evaluations).
    """
    import torch

    from ..model import GPTConfig
    from ..training import TrainConfig, read_config_file, resolve_config, train
    from ..training.config import TrainingError, parse_override

    if preset is not None and config_file is not None:
        raise click.UsageError("give --preset or --config, not both")
    settings = dict(parse_override(text) for text in overrides)
    flags = {"max_iters": max_iters, "batch_size": batch_size, "grad_accum": grad_accum,
             "value_head": value_head, "compile": compile_model}
    settings.update({k: v for k, v in flags.items() if v is not None})

    base = None
    run_config = out_dir / "config.json"
    if resume and preset is None and config_file is None:
        if not run_config.is_file():
            raise TrainingError(f"{out_dir}: nothing to resume (no config.json)")
        saved = read_config_file(run_config)
        base = (GPTConfig.from_dict(saved.get("model", {})), TrainConfig.from_dict(saved.get("training", {})))
    model_config, cfg = resolve_config(preset, config_file, settings, base=base)

    if threads:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    record = train(data_dir, out_dir, model_config, cfg, device=device, resume=resume, progress=not quiet)
    summary = ", ".join(f"{k} {record[k]}" for k in ("loss", "val_loss", "legal_move_rate", "value_acc") if k in record)
    click.echo(f"step {record.get('step')}: {summary or 'nothing to do'}; run in {out_dir}")
