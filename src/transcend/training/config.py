"""Training settings: the ``TrainConfig`` dataclass, the presets, config files and overrides.

A run is described by a model config (``model.GPTConfig``) and a ``TrainConfig``. They come from, in
order: a preset (``paper-50m``, ``small``, ``tiny``), a TOML or JSON file (which may name a preset to
start from), and ``name=value`` overrides. A file looks like ``configs/tiny.toml``::

    preset = "tiny"          # optional: start from this preset
    [model]                  # any GPTConfig field
    value_head = true
    [training]               # any TrainConfig field
    batch_size = 32

A run's own ``config.json`` (``{"model": ..., "training": ...}``) is a valid config file too.
"""

from __future__ import annotations

import dataclasses
import json
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TranscendError
from ..model import GPTConfig, ModelConfigError
from ..transcript import VOCAB


class TrainingError(TranscendError):
    """Bad input to training (dataset, config, resume target): reported as a one-line error."""


DTYPES = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 16
    """Sequences per micro-batch, per process."""
    grad_accum: int = 1
    """Micro-batches per optimizer step, over all processes (a multiple of the number of processes)."""
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 5000
    max_iters: int = 5000
    weight_decay: float = 0.1
    """AdamW weight decay, on matrices only (embeddings included, as nanoGPT); none on gains and biases."""
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    """Clip the global gradient norm to this; 0 turns clipping off."""
    eval_interval: int = 250
    eval_iters: int = 20
    """Validation micro-batches per evaluation (the same windows every time)."""
    log_interval: int = 10
    checkpoint_interval: int = 250
    seed: int = 1337
    dtype: str = "auto"
    """auto: bfloat16 autocast on a GPU that supports it and on a CPU with AVX512-BF16 or AMX, else float32."""
    compile: bool = False
    """torch.compile the model (PyTorch 2)."""
    value_loss_weight: float = 0.25
    """Weight of the win/draw/loss cross-entropy added to the next-symbol loss (models with a value head)."""
    legal_prompts: int = 32
    """Held-out game prefixes for the legal-move rate at each evaluation; 0 turns it off."""
    legal_temperature: float = 1.0
    """Sampling temperature of the legal-move rate (1.0: the model's own distribution)."""
    peak_flops: float = 312e12
    """Denominator of the MFU estimate, per device: nanoGPT's A100 bfloat16 peak; 989e12 for an H100 SXM."""

    def __post_init__(self) -> None:
        positive = ("batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters", "log_interval",
                    "checkpoint_interval", "lr_decay_iters", "peak_flops")
        for name in positive:
            if getattr(self, name) <= 0:
                raise TrainingError(f"training setting {name} must be positive, got {getattr(self, name)}")
        for name in ("warmup_iters", "learning_rate", "min_lr", "weight_decay", "grad_clip", "value_loss_weight",
                     "legal_prompts", "legal_temperature"):
            if getattr(self, name) < 0:
                raise TrainingError(f"training setting {name} must not be negative, got {getattr(self, name)}")
        if self.dtype not in DTYPES:
            raise TrainingError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return cls(**_typed(cls, data, "training"))


PRESETS: dict[str, tuple[GPTConfig, TrainConfig]] = {
    # The paper's 50M ChessFormer recipe (docs/protocol.md; the authors' config/50M_1000.json): AdamW 0.9/0.95,
    # weight decay 0.1 on matrices, clip 1.0, lr 3e-4 with 2000 warm-up steps and a cosine to 3e-5 over
    # 4M steps, batch 125 x accumulation 4 of 1023 symbols, bf16, torch.compile, seed 1337. They ran
    # to 4M steps but evaluated the 100k-step checkpoint, so max_iters is 100k here.
    "paper-50m": (
        # 16 layers, 8 heads, width 512, block 1023, no bias, tied embeddings: 50,888,704 parameters.
        GPTConfig(block_size=1023, n_layer=16, n_head=8, n_embd=512),
        TrainConfig(batch_size=125, grad_accum=4, learning_rate=3e-4, min_lr=3e-5, warmup_iters=2000,
                    lr_decay_iters=4_000_000, max_iters=100_000, eval_interval=1000, eval_iters=10,
                    log_interval=10, checkpoint_interval=1000, seed=1337, dtype="auto", compile=True,
                    legal_prompts=64),
    ),
    "small": (
        GPTConfig(block_size=1023, n_layer=8, n_head=8, n_embd=256),
        TrainConfig(batch_size=32, grad_accum=1, learning_rate=6e-4, min_lr=6e-5, warmup_iters=500,
                    lr_decay_iters=20_000, max_iters=20_000, eval_interval=500, eval_iters=20,
                    checkpoint_interval=500),
    ),
    # The bundled model's recipe (docs/default-model.md): batch 8 x 1023, 8000 steps (65M tokens), a high
    # learning rate for a small model, the value head's loss at a quarter weight; bf16 on a CPU that has
    # it (dtype auto). Recipe A of the scaling probe (docs/scaling.md), which measured fastest here.
    "default-model": (
        GPTConfig(block_size=1023, n_layer=4, n_head=4, n_embd=128, value_head=True),
        TrainConfig(batch_size=8, grad_accum=1, learning_rate=2e-3, min_lr=2e-4, warmup_iters=100,
                    lr_decay_iters=8000, max_iters=8000, eval_interval=1000, eval_iters=10, checkpoint_interval=200,
                    value_loss_weight=0.25, legal_prompts=64),
    ),
    "tiny": (GPTConfig(block_size=512, n_layer=2, n_head=4, n_embd=64), TrainConfig()),
}


def preset(name: str) -> tuple[GPTConfig, TrainConfig]:
    """The model and training settings of a preset."""
    try:
        return PRESETS[name]
    except KeyError:
        raise TrainingError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def _typed(cls: type, data: dict[str, Any], section: str) -> dict[str, Any]:
    """Check names and types of ``data`` against the dataclass ``cls`` (ints are accepted as floats)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise TrainingError(f"unknown {section} setting(s): {', '.join(unknown)}")
    out = {}
    for name, value in data.items():
        kind = type(fields[name].default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON configs write 4e6 for 4000000
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TrainingError(f"{section} setting {name} must be {kind.__name__}, got {value!r}")
        out[name] = value
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML or JSON config file into ``{"preset": ..., "model": {...}, "training": {...}}``."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: no such config file")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            raise TrainingError(f"{path}: a config file must end in .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrainingError(f"{path}: not valid {path.suffix[1:].upper()} ({exc})") from None
    if not isinstance(data, dict):
        raise TrainingError(f"{path}: a config file holds a table of settings")
    unknown = sorted(set(data) - {"preset", "model", "training", "vocab", "data"})
    if unknown:
        raise TrainingError(f"{path}: unknown section(s) {', '.join(unknown)} (expected preset, model, training)")
    if "vocab" in data and data["vocab"] != VOCAB:
        raise TrainingError(f"{path}: the config's vocabulary differs from the paper's 32 symbols")
    for section in ("model", "training"):
        if not isinstance(data.get(section, {}), dict):
            raise TrainingError(f"{path}: [{section}] must be a table of settings")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``name=value`` with a JSON value (``3e-4``, ``true``, ``125``) or a bare string (``bfloat16``)."""
    name, sep, raw = text.partition("=")
    name = name.strip().removeprefix("training.").removeprefix("model.")
    if not sep or not name:
        raise TrainingError(f"an override is name=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw.strip()
    return name, value


def resolve_config(
    preset_name: str | None = None,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    base: tuple[GPTConfig, TrainConfig] | None = None,
) -> tuple[GPTConfig, TrainConfig]:
    """Combine ``base`` (default: the tiny preset), a preset, a config file and overrides, in that order.

    Override names are TrainConfig or GPTConfig field names (``learning_rate``, ``n_layer``); the two
    sets of names do not overlap.
    """
    model_cfg, train_cfg = base if base is not None else preset("tiny")
    if preset_name is not None:
        model_cfg, train_cfg = preset(preset_name)
    model_data, train_data = model_cfg.to_dict(), train_cfg.to_dict()
    if config_file is not None:
        data = read_config_file(config_file)
        if "preset" in data:
            if preset_name is not None:
                raise TrainingError("give either --preset or a config file that names a preset, not both")
            base_model, base_train = preset(str(data["preset"]))
            model_data, train_data = base_model.to_dict(), base_train.to_dict()
        model_data.update(_typed(GPTConfig, data.get("model", {}), "model"))
        train_data.update(_typed(TrainConfig, data.get("training", {}), "training"))
    model_names = {f.name for f in dataclasses.fields(GPTConfig)}
    train_names = {f.name for f in dataclasses.fields(TrainConfig)}
    for name, value in (overrides or {}).items():
        if name in train_names:
            train_data.update(_typed(TrainConfig, {name: value}, "training"))
        elif name in model_names:
            model_data.update(_typed(GPTConfig, {name: value}, "model"))
        else:
            raise TrainingError(f"unknown setting {name!r} (not a model or training setting)")
    try:
        return GPTConfig(**model_data), TrainConfig(**train_data)
    except ModelConfigError as exc:
        raise TrainingError(f"bad model config: {exc}") from None
