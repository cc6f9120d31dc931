"""Training throughput on the CPU: tokens/s of the tiny and small presets, and of the bundled model's
config (configs/default-model.toml) with ``dtype`` float32 against auto (bfloat16 autocast on a CPU
with AVX512-BF16 or AMX), in one run so the two figures share the machine's state.

    python -m pytest benchmarks/bench_training.py --benchmark-only -p no:cacheprovider -c /dev/null

pytest-benchmark times a whole short run (model set-up, steps, one checkpoint); ``tokens_per_s`` in
the extra info is the trainer's own figure (what log.jsonl records: optimizer steps only, the first
step left out as warm-up), and ``mfu`` its MFU estimate against the default 312 TFLOPS peak.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import write_random_pgn  # noqa: E402

from transcend.data import GameFilter, prepare  # noqa: E402
from transcend.training import preset, resolve_config, train  # noqa: E402
from transcend.training.checkpoint import read_log  # noqa: E402
from transcend.training.loop import resolve_dtype  # noqa: E402

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "configs" / "default-model.toml"
CASES = {
    "tiny": (lambda: preset("tiny"), dict(batch_size=16, max_iters=6)),
    "small": (lambda: preset("small"), dict(batch_size=2, max_iters=3)),
    "default-model-float32": (lambda: resolve_config(config_file=DEFAULT_MODEL), dict(max_iters=12, dtype="float32")),
    "default-model-auto": (lambda: resolve_config(config_file=DEFAULT_MODEL), dict(max_iters=12, dtype="auto")),
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench-train")
    prepare([str(write_random_pgn(root / "g.pgn", 300))], root / "data", GameFilter(), val_fraction=0.05,
            progress=False)
    return root / "data"


@pytest.mark.parametrize("name", list(CASES))
def test_training_tokens_per_second(benchmark, dataset, tmp_path, name):
    torch.set_num_threads(2)
    configs, settings = CASES[name]
    model_cfg, base = configs()
    cfg = dataclasses.replace(base, **settings, log_interval=1, eval_interval=10**6, eval_iters=1,
                              checkpoint_interval=10**6, legal_prompts=0, compile=False)
    runs = (tmp_path / f"run{i}" for i in itertools.count())
    logs = []

    def run() -> None:
        out = next(runs)
        train(dataset, out, model_cfg, cfg, device="cpu", progress=False)
        logs.append(read_log(out))

    benchmark.pedantic(run, rounds=2, iterations=1)
    steady = [r for log in logs for r in log if r["step"] > 1]
    benchmark.extra_info["tokens_per_s"] = round(statistics.median(r["tokens_per_s"] for r in steady), 1)
    benchmark.extra_info["mfu"] = statistics.median(r["mfu"] for r in steady)
    benchmark.extra_info["dtype"] = resolve_dtype(cfg, torch.device("cpu"))
    benchmark.extra_info["tokens_per_step"] = cfg.batch_size * cfg.grad_accum * model_cfg.block_size
    assert benchmark.extra_info["tokens_per_s"] > 0
