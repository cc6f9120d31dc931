"""Export: run directory and nanoGPT ckpt.pt sources, the ONNX format, --verify, int8 and fp16."""

from __future__ import annotations

import json
import subprocess
import sys

import chess
import numpy as np
import pytest
import torch

from transcend.engine.policy import MovePolicy
from transcend.engine.runtime import FORMAT_VERSION, OnnxModel
from transcend.export import export_onnx, packed_transcript, verification_boards, verify
from transcend.model import GPT, GPTConfig

CONFIG = GPTConfig(block_size=160, n_layer=2, n_head=2, n_embd=32)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transcend.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def small_model() -> GPT:
    torch.manual_seed(1)
    return GPT(CONFIG).eval()


@pytest.fixture(scope="module")
def nanogpt_ckpt(small_model, tmp_path_factory):
    """A checkpoint laid out as the paper's: ``model_args``, ``model`` with ``_orig_mod.`` keys."""
    path = tmp_path_factory.mktemp("ckpt") / "ckpt.pt"
    state = {f"_orig_mod.{k}": v.clone() for k, v in small_model.state_dict().items()}
    args = dict(n_layer=2, n_head=2, n_embd=32, block_size=160, bias=False, vocab_size=32, dropout=0.0)
    torch.save({"model": state, "model_args": args, "iter_num": 100, "config": {}}, path)
    return path


def test_export_of_a_nanogpt_checkpoint(nanogpt_ckpt, tmp_path):
    out = tmp_path / "m.onnx"
    result = run_cli("export", str(nanogpt_ckpt), "-o", str(out))
    assert result.returncode == 0, result.stderr
    model = OnnxModel(out, provider="cpu")
    assert model.info.format_version == FORMAT_VERSION and model.info.quantization == "none"
    assert model.info.block_size == 160 and model.info.n_layer == 2
    meta = model.session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["transcend.model_config"])["n_embd"] == 32 and meta["transcend.source"] == "ckpt.pt"
    names = [i.name for i in model.session.get_inputs()]
    assert names == ["tokens", "positions", "attn_mask", "past_key_0", "past_key_1", "past_value_0", "past_value_1"]


def test_export_of_a_run_directory(small_model, tmp_path):
    from transcend.model import save_weights

    run = tmp_path / "run"
    run.mkdir()
    save_weights(small_model, run / "model.safetensors")
    (run / "config.json").write_text(json.dumps({"model": CONFIG.to_dict()}))
    out = tmp_path / "run.onnx"
    result = run_cli("export", str(run), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert MovePolicy(OnnxModel(out, provider="cpu")).score_legal_moves(chess.Board()).moves


def test_verify_matches_pytorch_closely(small_model, tmp_path):
    out = tmp_path / "fp32.onnx"
    export_onnx(small_model, out)
    result = verify(small_model, out, threads=1)
    assert result.ok and result.max_logit_diff < 1e-4 and result.max_move_logprob_diff < 1e-4
    assert result.top_move_agreement == 1.0 and result.positions == len(verification_boards())


@pytest.mark.parametrize("quantize", ["int8", "fp16"])
def test_quantized_exports_stay_close(small_model, tmp_path, quantize):
    out = tmp_path / f"{quantize}.onnx"
    export_onnx(small_model, out, quantize=quantize)
    model = OnnxModel(out, provider="cpu")
    assert model.info.quantization == quantize
    assert model.cache_dtype == (np.float16 if quantize == "fp16" else np.float32)
    assert out.stat().st_size < 0.7 * _fp32_size(small_model, tmp_path)
    result = verify(small_model, out, threads=1)
    assert result.ok and 0 < result.max_logit_diff
    assert result.top_move_agreement >= 0.8


def _fp32_size(model, tmp_path) -> int:
    path = tmp_path / "reference.onnx"
    export_onnx(model, path)
    return path.stat().st_size


def test_verify_fails_past_the_tolerance(nanogpt_ckpt, tmp_path):
    result = run_cli("export", str(nanogpt_ckpt), "-o", str(tmp_path / "q.onnx"), "--quantize", "int8",
                     "--verify", "--tolerance", "0")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "largest logit difference" in result.stdout and "same most probable move" in result.stdout
    assert "verification failed" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_packed_verification_transcript_is_real_games():
    ids = packed_transcript(300)
    from transcend.transcript import decode

    text = decode(ids)
    assert len(ids) == 300 and text.startswith(";1.e4 e5 2.Nf3 d6 3.d4 Bg4") and text.count(";") >= 2
