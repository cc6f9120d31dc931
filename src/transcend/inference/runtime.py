"""The exported ONNX model on onnxruntime: loading, validation of its metadata, one cached step.

The file's inputs, outputs and metadata are those of ``contract``, found by name. Never imports torch:
the UCI engine must start in well under half a second.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TranscendError
from ..transcript import VOCAB
from . import contract
from .contract import FORMAT_VERSION, READABLE_FORMATS

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "assets" / "default.onnx"


class ModelError(TranscendError):
    """A model file that cannot be used (missing, corrupt, foreign, wrong version)."""


@dataclass(frozen=True)
class ModelInfo:
    format_version: str
    n_layer: int
    n_head: int
    head_dim: int
    block_size: int
    vocab: str
    has_value_head: bool
    config: dict
    quantization: str
    """none, int8 or fp16."""
    card: dict = field(default_factory=dict)
    """The model card (``transcend.card``: provenance and measured results), empty when absent."""


@dataclass
class StepOutput:
    logits: np.ndarray  # (B, T, vocab) float32
    new_keys: np.ndarray  # (n_layer, B, n_head, T, head_dim): the fed symbols' keys only
    new_values: np.ndarray
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


def empty_cache(info: ModelInfo, dtype: type = np.float32, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Keys and values of no symbol: (n_layer, batch, n_head, 0, head_dim) each."""
    shape = (info.n_layer, batch, info.n_head, 0, info.head_dim)
    return np.zeros(shape, dtype), np.zeros(shape, dtype)


class OnnxModel:
    """An exported transcend model, ready to run cached steps.

    ``provider``: ``auto`` (CUDA where onnxruntime can start it, else the CPU), ``cuda`` (an error when
    CUDA is not usable) or ``cpu``. ``threads``: onnxruntime's intra-op threads, 0 for its default (one
    per core). Graph optimisation is onnxruntime's highest level (``ORT_ENABLE_ALL``).
    """

    def __init__(self, path: str | Path, provider: str = "auto", threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: no such model file")
        if threads < 0:
            raise ModelError(f"threads must be 0 (onnxruntime's default) or positive, not {threads}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
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
            raise ModelError(
                "CUDA was asked for but onnxruntime could not start its CUDA provider (no GPU, or the "
                "CUDA / cuDNN libraries onnxruntime-gpu needs are missing); use --provider cpu or auto"
            )
        self.path = path
        self.info = _read_info(path, self.session.get_modelmeta().custom_metadata_map)
        self.output_names = [o.name for o in self.session.get_outputs()]
        inputs = {i.name: i for i in self.session.get_inputs()}
        if self.info.format_version == "1":
            self._past_names: list[str] = []
            wanted = [contract.V1_PAST_KEYS, contract.V1_PAST_VALUES]
        else:
            self._past_names = contract.past_names(self.info.n_layer)
            wanted = self._past_names
        missing = [name for name in [contract.TOKENS, contract.POSITIONS, contract.ATTN_MASK, *wanted]
                   if name not in inputs]
        if missing:
            raise ModelError(f"{path}: the model lacks the input(s) {', '.join(missing)} of format "
                             f"{self.info.format_version}")
        self.cache_dtype = np.float16 if inputs[wanted[0]].type == "tensor(float16)" else np.float32

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def empty_cache(self, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
        return empty_cache(self.info, self.cache_dtype, batch)

    def step(
        self,
        tokens: np.ndarray,
        positions: np.ndarray,
        attn_mask: np.ndarray,
        past_keys: Sequence[np.ndarray],
        past_values: Sequence[np.ndarray],
    ) -> StepOutput:
        """One forward pass over new symbols on top of a KV cache.

        tokens, positions: (B, T) int; attn_mask: (B, T, P+T) bool, True where attention is allowed;
        past_keys / past_values: one (B, n_head, P, head_dim) array per layer (a stacked
        (n_layer, B, n_head, P, head_dim) array is such a sequence). Returns the logits and the keys
        and values of the T new symbols only.
        """
        feed = {
            contract.TOKENS: np.ascontiguousarray(tokens, dtype=np.int64),
            contract.POSITIONS: np.ascontiguousarray(positions, dtype=np.int64),
            contract.ATTN_MASK: np.ascontiguousarray(attn_mask, dtype=bool),
        }
        n = self.info.n_layer
        if self._past_names:
            for name, array in zip(self._past_names, [*past_keys, *past_values]):
                feed[name] = np.ascontiguousarray(array, dtype=self.cache_dtype)
        else:  # format 1: stacked past in, whole present out
            feed[contract.V1_PAST_KEYS] = np.ascontiguousarray(np.stack(past_keys[:n]), dtype=self.cache_dtype)
            feed[contract.V1_PAST_VALUES] = np.ascontiguousarray(np.stack(past_values[:n]), dtype=self.cache_dtype)
        named = dict(zip(self.output_names, self.session.run(None, feed)))
        if self._past_names:
            keys, values = named[contract.NEW_KEYS], named[contract.NEW_VALUES]
        else:
            past = feed[contract.V1_PAST_KEYS].shape[3]
            keys = named[contract.V1_PRESENT_KEYS][:, :, :, past:]
            values = named[contract.V1_PRESENT_VALUES][:, :, :, past:]
        wdl = named.get(contract.WDL_LOGITS)
        return StepOutput(
            logits=named[contract.LOGITS].astype(np.float32, copy=False),
            new_keys=keys,
            new_values=values,
            wdl_logits=None if wdl is None else wdl.astype(np.float32, copy=False),
        )


def _read_info(path: Path, meta: dict[str, str]) -> ModelInfo:
    version = meta.get(contract.META_FORMAT_VERSION)
    if version is None:
        raise ModelError(f"{path}: not a transcend model (no transcend metadata)")
    if version not in READABLE_FORMATS:
        raise ModelError(
            f"{path}: model format {version}, this engine reads formats {', '.join(READABLE_FORMATS)}"
        )
    if meta.get(contract.META_VOCAB) != VOCAB:
        raise ModelError(f"{path}: the model's vocabulary differs from the transcript vocabulary")
    try:
        config = json.loads(meta[contract.META_MODEL_CONFIG])
        info = model_info(config, version, meta.get(contract.META_QUANTIZATION, "none"))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"{path}: broken model config in the metadata ({exc})") from None
    try:
        card = json.loads(meta.get(contract.META_CARD, "{}"))
    except ValueError:
        raise ModelError(f"{path}: broken model card in the metadata") from None
    return dataclasses.replace(info, card=card if isinstance(card, dict) else {})


def model_info(config: dict, format_version: str = FORMAT_VERSION, quantization: str = "none") -> ModelInfo:
    """The ModelInfo of a model config (``GPTConfig.to_dict()``); KeyError / ValueError when broken."""
    n_embd, n_head = int(config["n_embd"]), int(config["n_head"])
    return ModelInfo(
        format_version=format_version,
        n_layer=int(config["n_layer"]),
        n_head=n_head,
        head_dim=n_embd // n_head,
        block_size=int(config["block_size"]),
        vocab=VOCAB,
        has_value_head=bool(config.get("value_head", False)),
        config=config,
        quantization=quantization,
    )
