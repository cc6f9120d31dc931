"""Move probabilities with PyTorch instead of onnxruntime: for tests, and for users without onnxruntime.

``TorchModel`` has the interface of ``runtime.OnnxModel`` (``info``, ``empty_cache``, ``step``)
and runs the very forward that the export traces (``GPT.forward_cached``), so ``MovePolicy(TorchModel(..))``
builds the same prefix tree, keeps the same KV cache and gives the same probabilities as the ONNX path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..model import GPT, load_model
from .policy import MovePolicy
from .runtime import ModelInfo, StepOutput, empty_cache, model_info


class TorchModel:
    """A transcend model run by PyTorch with the ``OnnxModel`` interface."""

    def __init__(self, model: GPT | str | Path, device: str = "cpu", threads: int = 0) -> None:
        if threads > 0:
            torch.set_num_threads(threads)
        if not isinstance(model, GPT):
            model = load_model(Path(model))
        self.device = torch.device(device)
        self.model = model.eval().float().to(self.device)
        self.info: ModelInfo = model_info(model.config.to_dict())
        self.cache_dtype = np.float32

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
        """As ``OnnxModel.step``: logits and the new symbols' keys and values."""

        def tensor(array, dtype):
            return torch.from_numpy(np.ascontiguousarray(array, dtype=dtype)).to(self.device)

        with torch.inference_mode():
            out = self.model.forward_cached(tensor(tokens, np.int64), tensor(positions, np.int64),
                                            tensor(attn_mask, np.bool_), [tensor(a, np.float32) for a in past_keys],
                                            [tensor(a, np.float32) for a in past_values])
        arrays = [o.float().cpu().numpy() for o in out]
        return StepOutput(arrays[0], arrays[1], arrays[2], arrays[3] if len(arrays) > 3 else None)


def torch_move_policy(source: GPT | str | Path, device: str = "cpu", threads: int = 0) -> MovePolicy:
    """A ``MovePolicy`` on PyTorch, from a model or a run directory / .safetensors / nanoGPT ckpt.pt."""
    return MovePolicy(TorchModel(source, device=device, threads=threads))
