"""Export a trained model (run directory or nanoGPT ``ckpt.pt``) to one self-describing ONNX file.

The graph is ``GPT.forward_cached``: it takes a KV cache in and gives one out, with explicit position
ids and attention mask, so that the engine can score all legal moves as a prefix tree in one pass.
Metadata properties carry the format version, the vocabulary and the model config.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from .model import GPT, load_model
from .transcript import VOCAB

FORMAT_VERSION = "1"
INPUT_NAMES = ["tokens", "positions", "attn_mask", "past_keys", "past_values"]
OUTPUT_NAMES = ["logits", "present_keys", "present_values"]
VALUE_OUTPUT = "wdl_logits"


class _CachedStep(torch.nn.Module):
    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens, positions, attn_mask, past_keys, past_values):  # noqa: D102
        return self.model.forward_cached(tokens, positions, attn_mask, past_keys, past_values)


def export_onnx(model: GPT, out_path: Path, source: str = "") -> None:
    """Trace ``model.forward_cached`` to ONNX (opset 17) and attach the metadata."""
    import onnx

    cfg = model.config
    model = model.eval().float().cpu()
    past, new = 3, 2
    cache = torch.zeros(cfg.n_layer, 1, cfg.n_head, past, cfg.head_dim)
    example = (
        torch.zeros(1, new, dtype=torch.long),
        torch.arange(past, past + new).unsqueeze(0),
        torch.ones(1, new, past + new, dtype=torch.bool),
        cache,
        cache.clone(),
    )
    output_names = OUTPUT_NAMES + ([VALUE_OUTPUT] if cfg.value_head else [])
    dynamic = {
        "tokens": {0: "batch", 1: "new"},
        "positions": {0: "batch", 1: "new"},
        "attn_mask": {0: "batch", 1: "new", 2: "total"},
        "past_keys": {1: "batch", 3: "past"},
        "past_values": {1: "batch", 3: "past"},
        "logits": {0: "batch", 1: "new"},
        "present_keys": {1: "batch", 3: "total"},
        "present_values": {1: "batch", 3: "total"},
        VALUE_OUTPUT: {0: "batch", 1: "new"},
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _CachedStep(model), example, str(tmp), dynamo=False, opset_version=17,
            input_names=INPUT_NAMES, output_names=output_names,
            dynamic_axes={k: v for k, v in dynamic.items() if k in INPUT_NAMES + output_names},
        )
    proto = onnx.load(str(tmp))
    write_metadata(proto, cfg.to_dict(), source)
    onnx.save(proto, str(tmp))
    tmp.replace(out_path)


def write_metadata(proto, model_config: dict, source: str = "") -> None:
    """Set transcend's metadata properties on an ONNX ModelProto (replacing any earlier ones)."""
    props = {
        "transcend.format_version": FORMAT_VERSION,
        "transcend.vocab": VOCAB,
        "transcend.model_config": json.dumps(model_config),
        "transcend.source": source,
    }
    keep = [p for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def export(source: Path, out_path: Path) -> GPT:
    """Load ``source`` (run directory, .safetensors or nanoGPT ckpt.pt) and export it."""
    model = load_model(Path(source))
    export_onnx(model, out_path, source=Path(source).name)
    return model
