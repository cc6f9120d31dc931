"""The exported ONNX model on onnxruntime: loading, validation of its metadata, one cached step.

Never imports torch: the UCI engine must start in well under half a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..transcript import VOCAB

FORMAT_VERSION = "1"
BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "assets" / "default.onnx"


class ModelError(ValueError):
    """A model file that cannot be used (missing, corrupt, foreign, wrong version)."""


@dataclass(frozen=True)
class ModelInfo:
    n_layer: int
    n_head: int
    head_dim: int
    block_size: int
    vocab: str
    has_value_head: bool
    config: dict


@dataclass
class StepOutput:
    logits: np.ndarray  # (B, T, vocab) float32
    keys: np.ndarray  # (n_layer, B, n_head, P+T, head_dim)
    values: np.ndarray
    wdl_logits: np.ndarray | None  # (B, T, 3) when the model has a value head


def available_providers() -> list[str]:
    import onnxruntime as ort

    return ort.get_available_providers()


def choose_providers(provider: str) -> list[str]:
    """Map ``auto|cuda|cpu`` to onnxruntime providers; ``cuda`` fails loudly when unusable."""
    available = available_providers()
    if provider == "cpu":
        return ["CPUExecutionProvider"]
    if provider == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ModelError("CUDA was asked for but onnxruntime has no usable CUDA provider here")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if provider == "auto":
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    raise ModelError(f"unknown provider {provider!r}; choose auto, cuda or cpu")


class OnnxModel:
    """An exported transcend model, ready to run cached steps."""

    def __init__(self, path: str | Path, provider: str = "auto", threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: no such model file")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = choose_providers(provider)
        # With 'auto', a CUDA provider that is listed but cannot start (no CUDA libraries) is not an
        # error worth printing: onnxruntime falls back to the CPU, which we check below.
        ort.set_default_logger_severity(4 if provider == "auto" else 3)
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{path}: not a readable ONNX model ({first[:200]})") from None
        if provider == "cuda" and "CUDAExecutionProvider" not in self.session.get_providers():
            raise ModelError("CUDA was asked for but onnxruntime could not start its CUDA provider")
        self.path = path
        self.info = _read_info(path, self.session.get_modelmeta().custom_metadata_map)
        self.output_names = [o.name for o in self.session.get_outputs()]
        dtype = {"tensor(float16)": np.float16}.get(self.session.get_inputs()[3].type, np.float32)
        self.cache_dtype = dtype

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def empty_cache(self, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
        i = self.info
        shape = (i.n_layer, batch, i.n_head, 0, i.head_dim)
        return np.zeros(shape, self.cache_dtype), np.zeros(shape, self.cache_dtype)

    def step(
        self,
        tokens: np.ndarray,
        positions: np.ndarray,
        attn_mask: np.ndarray,
        past_keys: np.ndarray,
        past_values: np.ndarray,
    ) -> StepOutput:
        """One forward pass; shapes as in ``GPT.forward_cached``."""
        outputs = self.session.run(
            None,
            {
                "tokens": np.ascontiguousarray(tokens, dtype=np.int64),
                "positions": np.ascontiguousarray(positions, dtype=np.int64),
                "attn_mask": np.ascontiguousarray(attn_mask, dtype=bool),
                "past_keys": past_keys,
                "past_values": past_values,
            },
        )
        named = dict(zip(self.output_names, outputs))
        return StepOutput(
            logits=named["logits"].astype(np.float32, copy=False),
            keys=named["present_keys"],
            values=named["present_values"],
            wdl_logits=named.get("wdl_logits"),
        )


def _read_info(path: Path, meta: dict[str, str]) -> ModelInfo:
    version = meta.get("transcend.format_version")
    if version is None:
        raise ModelError(f"{path}: not a transcend model (no transcend metadata)")
    if version != FORMAT_VERSION:
        raise ModelError(f"{path}: model format {version}, this engine reads format {FORMAT_VERSION}")
    if meta.get("transcend.vocab") != VOCAB:
        raise ModelError(f"{path}: the model's vocabulary differs from the transcript vocabulary")
    try:
        config = json.loads(meta["transcend.model_config"])
        n_embd, n_head = int(config["n_embd"]), int(config["n_head"])
        return ModelInfo(
            n_layer=int(config["n_layer"]),
            n_head=n_head,
            head_dim=n_embd // n_head,
            block_size=int(config["block_size"]),
            vocab=VOCAB,
            has_value_head=bool(config.get("value_head", False)),
            config=config,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"{path}: broken model config in the metadata ({exc})") from None
