"""Checkpoint I/O: a run's ``model.safetensors``, a ``.safetensors`` file, and nanoGPT's ``ckpt.pt``.

State dicts keep nanoGPT's parameter names, so the paper's released checkpoints load as they are;
``torch.compile``'s ``_orig_mod.`` and DDP's ``module.`` prefixes are stripped. Safetensors files hold
the tied embedding once (under ``lm_head.weight``) and the model config in their metadata.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from ..errors import TranscendError
from ..files import atomic_write
from .gpt import GPT, GPTConfig


class CheckpointError(TranscendError):
    """Weights that cannot be read, or that do not fit the model they are loaded into."""


_IGNORED_KEYS = ("attn.bias", "attn.masked_bias")


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip torch.compile's ``_orig_mod.`` prefix and drop old causal-mask buffers."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("_orig_mod.").removeprefix("module.")
        if key.endswith(_IGNORED_KEYS):
            continue
        out[key] = value
    return out


def load_state(model: GPT, state: dict[str, torch.Tensor]) -> None:
    """Load a (nanoGPT-layout) state dict strictly, with a readable error on mismatch."""
    state = clean_state_dict(state)
    if "lm_head.weight" not in state and "transformer.wte.weight" in state:
        state["lm_head.weight"] = state["transformer.wte.weight"]
    if "transformer.wte.weight" not in state and "lm_head.weight" in state:
        state["transformer.wte.weight"] = state["lm_head.weight"]
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            "weights do not fit the model: "
            + (f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"unexpected {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}" if unexpected else "")
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"weights do not fit the model: {key} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(expected[key].shape)}"
            )
    model.load_state_dict(state, strict=True)


def save_weights(model: GPT, path: Path) -> None:
    """Write the weights as safetensors (tied tensors stored once, under lm_head.weight)."""
    from safetensors.torch import save_file

    raw = model.module if hasattr(model, "module") else model
    raw = getattr(raw, "_orig_mod", raw)
    state = {k: v.detach().cpu().contiguous() for k, v in raw.state_dict().items()}
    state.pop("transformer.wte.weight")
    metadata = {"config": json.dumps(raw.config.to_dict())}
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))


def load_nanogpt_checkpoint(path: Path) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    """Read a nanoGPT ``ckpt.pt`` (``model_args`` and ``model``) without unpickling arbitrary objects."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_args" not in ckpt:
        raise CheckpointError(f"{path}: not a nanoGPT checkpoint (needs 'model' and 'model_args')")
    args = dict(ckpt["model_args"])
    known = {f.name for f in dataclasses.fields(GPTConfig)}
    config = GPTConfig(**{k: v for k, v in args.items() if k in known})
    return config, clean_state_dict(ckpt["model"])


def load_model(source: Path) -> GPT:
    """Load a model from a training run directory, a ``.safetensors`` file, or a nanoGPT ``ckpt.pt``."""
    source = Path(source)
    if source.is_dir():
        config_path = source / "config.json"
        weights = source / "model.safetensors"
        if not config_path.is_file() or not weights.is_file():
            raise CheckpointError(f"{source}: not a training run (needs config.json and model.safetensors)")
        config = GPTConfig.from_dict(json.loads(config_path.read_text())["model"])
        state = _read_safetensors(weights)
    elif source.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(source), framework="pt") as f:
            meta = f.metadata() or {}
        if "config" not in meta:
            raise CheckpointError(f"{source}: safetensors file without a model config in its metadata")
        config = GPTConfig.from_dict(json.loads(meta["config"]))
        state = _read_safetensors(source)
    elif source.is_file():
        config, state = load_nanogpt_checkpoint(source)
    else:
        raise CheckpointError(f"{source}: no such file or directory")
    model = GPT(config)
    load_state(model, state)
    model.eval()
    return model


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None
