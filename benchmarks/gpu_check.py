"""The CUDA path measured in one call: a prepared check for a GPU machine that is lent only briefly.

Run it from the repository root on the GPU machine (it installs what is missing, then runs each step):

    python3 benchmarks/gpu_check.py --out OUT

Steps, in order, each with its own time budget (together 7 min 40 s) and each independent: a step that
fails is recorded with its one-line error and the next one still runs (it reports what it lacks when
it needs something a failed step should have made).

* ``install``: ``pip install -e . --no-deps`` when ``transcend`` is not installed, then the wheels in
  ``--wheels`` of distributions that are not installed (into a folder put first on PYTHONPATH);
  the CUDA libraries of the ``nvidia-*`` pip packages go on LD_LIBRARY_PATH for onnxruntime.
* ``versions``: Python, torch and its CUDA, the GPU, onnxruntime and its providers, onnx, chess.
* ``data``: random legal games (``transcend data synth --expert random``, no Stockfish), ``prepare``.
* ``train``: ``transcend train --preset paper-50m`` for a fixed number of steps, bf16 autocast,
  torch.compile: median tokens/s after the warm-up steps and the trainer's own MFU (log.jsonl's
  ``mfu``: (6N + 12 L H Q T) FLOPs a token, N the non-embedding parameters, nanoGPT's count) against
  the GPU's dense bf16 peak from ``BF16_PEAK_TFLOPS``.
* ``train_ddp``: the same under ``torchrun --standalone --nproc_per_node 1``.
* ``export``: fp32 (``--verify``) and fp16 ONNX files of the trained model (of a one-step run when
  both training steps failed).
* ``parity``: ``transcend policy --json`` with the CUDA provider against the fp32 model on the CPU
  provider: the largest difference of a move's probability over the positions at ``PLIES``.
* ``move_time``: ``transcend-uci --provider cuda`` through python-chess's UCI client, each model:
  the median time from ``go`` to ``bestmove`` at plies 20, 60 and 100 of a continuing game (the
  engine has seen the position two plies earlier, as in a game).
* ``uci_game``: a short game of ``transcend-uci --provider cuda`` against itself.

``--out`` receives ``report.json`` (rewritten after every step, so a killed run leaves the steps so
far) and ``gpu_check.log`` (every command with its output). The data, runs and models go to
``--work`` (a temporary folder, removed at the end, when not given). The exit status is 0 when every
step passed, 1 otherwise.

``--dry-run`` runs the same steps on the CPU with the tiny preset, no torch.compile and onnxruntime's
CPU provider in place of CUDA, in about a minute; ``tests/test_gpu_check.py`` runs it.

Only the command line and ``transcend``'s installed commands are used, never its modules, so that
moving code inside the package leaves the check working.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TextIO

if TYPE_CHECKING:  # python-chess may be missing until the install step brings it
    import chess
    import chess.engine

REPO = Path(__file__).resolve().parents[1]
GAME = (REPO / "tests" / "fixtures" / "games.txt").read_text().split("\n")[0].split()
"""A Stockfish game in UCI moves (123 plies), the source of the positions timed and compared."""
PLIES = (20, 60, 100)
BF16_PEAK_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0), ("L40S", 362.0),
                    ("L4", 121.0))
"""Dense bf16 tensor-core peaks by a part of the GPU's name, first match wins (vendor data sheets)."""


@dataclass(frozen=True)
class Settings:
    """What differs between the check on a GPU and its dry run on the CPU."""

    preset: str
    device: str
    """torch device of the training steps."""
    provider: str
    """onnxruntime provider under test (``transcend-uci --provider``)."""
    compile: bool
    games: int
    """Random games generated for the dataset."""
    train_steps: int
    ddp_steps: int
    warmup_steps: int
    """Steps left out of the tokens/s median (torch.compile runs during the first)."""
    rounds: int
    """Timed moves per ply and model."""
    game_plies: int


GPU = Settings(preset="paper-50m", device="cuda", provider="cuda", compile=True, games=512, train_steps=12,
               ddp_steps=6, warmup_steps=2, rounds=7, game_plies=40)
DRY_RUN = Settings(preset="tiny", device="cpu", provider="cpu", compile=False, games=64, train_steps=4,
                   ddp_steps=3, warmup_steps=1, rounds=3, game_plies=16)


class StepError(Exception):
    """An expected failure of a step, already worded as its one-line error."""


@dataclass
class Check:
    """The state the steps share: settings, folders, the log, the child processes' environment, and
    what earlier steps made (``found``: dataset, runs, models, peak)."""

    settings: Settings
    work: Path
    wheels: Path | None
    log: TextIO
    env: dict[str, str]
    found: dict[str, Any] = field(default_factory=dict)
    deadline: float = 0.0
    """time.monotonic() at which the running step's budget ends."""

    def note(self, text: str) -> None:
        self.log.write(text.rstrip("\n") + "\n")
        self.log.flush()

    def needs(self, key: str, step: str) -> Any:
        if key not in self.found:
            raise StepError(f"needs the {key} that step {step} makes, and it did not")
        return self.found[key]


def one_line(text: str) -> str:
    """The last non-blank line of ``text`` without terminal colour codes (the exception line of a
    traceback, a CLI's error line)."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()]
    return next((line for line in reversed(lines) if line), "")


def run_command(check: Check, args: list[str]) -> str:
    """Run ``args`` within what is left of the step's budget, log its output, return its stdout.

    It runs in its own process group, so that a command past the budget is killed with its children
    (torchrun's workers, compile workers)."""
    left = check.deadline - time.monotonic()
    if left <= 0:
        raise StepError("its time budget was spent before its next command")
    check.note(f"$ {shlex.join(args)}")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=check.env,
                            cwd=check.work, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=left)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        check.note(out + err)
        raise StepError(f"{label(args)} ran past the step's time budget") from None
    except BaseException:  # Ctrl-C or SIGTERM: the command must not outlive the check
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    check.note(out + err)
    if proc.returncode:
        raise StepError(f"{label(args)}: {one_line(err) or one_line(out) or f'exit status {proc.returncode}'}")
    return out


def label(args: list[str]) -> str:
    """A command's name for its error: ``transcend data synth``, ``torch.distributed.run``."""
    if args[1:2] == ["-m"]:
        return args[2]
    words = [Path(args[0]).name]
    for word in args[1:3]:
        if word.startswith("-") or os.sep in word:
            break
        words.append(word)
    return " ".join(words)


def transcend(*args: str) -> list[str]:
    return ["transcend", *args]


def cuda_library_dirs() -> list[str]:
    """Folders of CUDA libraries that pip's ``nvidia-*`` packages hold (the ones torch loads), which
    onnxruntime's CUDA provider finds only on LD_LIBRARY_PATH."""
    dirs = []
    for entry in sys.path:
        nvidia = Path(entry) / "nvidia"
        if nvidia.is_dir():
            dirs += sorted(str(d) for d in nvidia.glob("**/lib") if any(d.glob("*.so*")))
    return dirs


def prepend(env: dict[str, str], name: str, *paths: str) -> None:
    """Put ``paths`` first on the search path ``env[name]``."""
    env[name] = os.pathsep.join([*paths, *filter(None, [env.get(name)])])


def install(check: Check) -> dict[str, Any]:
    """What the other steps need, from what is installed first, then from local wheels (no index)."""
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"]
    done: dict[str, Any] = {"installed": []}
    if shutil.which("transcend", path=check.env["PATH"]) is None:
        try:
            run_command(check, pip + ["--no-build-isolation", "-e", str(REPO)])
            done["installed"].append("transcend (pip install -e)")
        except StepError as exc:  # no build backend that can do it offline
            check.note(f"{exc}: running transcend from src/ instead")
            commands_from_source(check)
            done["installed"].append("transcend (src/ on PYTHONPATH, its commands from pyproject.toml)")
    if check.wheels is not None:
        wanted = [w for w in sorted(check.wheels.glob("*.whl")) if not installed(w.name.split("-")[0])]
        if wanted:
            site = check.work / "site"
            run_command(check, pip + ["--no-compile", "--target", str(site)] + [str(w) for w in wanted])
            prepend(check.env, "PYTHONPATH", str(site))
            sys.path.insert(0, str(site))  # python-chess drives the engine from this process
            done["installed"] += [w.name for w in wanted]
    libs = cuda_library_dirs()
    if libs:
        prepend(check.env, "LD_LIBRARY_PATH", *libs)
    done["cuda_library_dirs"] = len(libs)
    done["missing"] = missing_requirements()
    run_command(check, transcend("--version"))
    run_command(check, ["transcend-uci", "--help"])
    return done


def commands_from_source(check: Check) -> None:
    """transcend without installing it: ``src`` on PYTHONPATH and, in ``WORK/bin``, the console scripts
    that pyproject.toml names, as pip would write them."""
    bin_dir = check.work / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, target in project()["scripts"].items():
        module, function = target.split(":")
        script = bin_dir / name
        script.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n")
        script.chmod(0o755)
    prepend(check.env, "PATH", str(bin_dir))
    prepend(check.env, "PYTHONPATH", str(REPO / "src"))


def project() -> dict[str, Any]:
    """pyproject.toml's [project] table."""
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def missing_requirements() -> list[str]:
    """transcend's requirements (pyproject.toml's) for this platform that no installed distribution
    meets by name: the image's CPU ``onnxruntime`` does not stand in for ``onnxruntime-gpu``."""
    from packaging.requirements import Requirement

    reqs = [Requirement(r) for r in project()["dependencies"]]
    return sorted(str(r) for r in reqs if (r.marker is None or r.marker.evaluate()) and not installed(r.name))


def print_versions() -> None:
    """Print this machine's software and GPU as one JSON object (the ``versions`` step's child process,
    so that a broken import fails only that step)."""
    facts: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("torch", "onnxruntime", "onnxruntime-gpu", "onnx", "chess", "transcend"):
        facts[dist] = importlib.metadata.version(dist) if installed(dist) else None
    try:
        import torch

        facts.update(torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                     cuda_available=torch.cuda.is_available())
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            facts.update(gpu=props.name, gpus=torch.cuda.device_count(), capability=f"{props.major}.{props.minor}",
                         gpu_memory_gib=round(props.total_memory / 2**30, 1), bf16=torch.cuda.is_bf16_supported())
    except Exception as exc:  # noqa: BLE001 - recorded, the onnxruntime facts still count
        facts["torch_error"] = f"{type(exc).__name__}: {exc}"
    try:
        import onnxruntime

        facts.update(onnxruntime_providers=onnxruntime.get_available_providers(),
                     onnxruntime_device=onnxruntime.get_device())
    except Exception as exc:  # noqa: BLE001
        facts["onnxruntime_error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(facts))


def bf16_peak_flops(gpu: str) -> float | None:
    return next((tflops * 1e12 for part, tflops in BF16_PEAK_TFLOPS if part in gpu), None)


def versions(check: Check) -> dict[str, Any]:
    facts = json.loads(run_command(check, [sys.executable, str(Path(__file__).resolve()), "--print-versions"]))
    if shutil.which("nvidia-smi"):
        facts["driver"] = run_command(check, ["nvidia-smi", "--query-gpu=driver_version",
                                              "--format=csv,noheader"]).strip()
    peak = bf16_peak_flops(facts.get("gpu", ""))
    facts["bf16_peak_tflops"] = None if peak is None else peak / 1e12
    if peak is not None:
        check.found["peak"] = peak
    if check.settings.device == "cuda" and not facts.get("cuda_available"):
        raise StepError(f"torch sees no GPU ({facts.get('torch_error') or 'torch.cuda.is_available() is False'})")
    return facts


def data(check: Check) -> dict[str, Any]:
    workers = str(min(8, os.cpu_count() or 1))
    pgn, dataset = check.work / "games.pgn", check.work / "data"
    run_command(check, transcend("data", "synth", "--out", str(pgn), "--games", str(check.settings.games),
                                 "--expert", "random", "--max-plies", "300", "--workers", workers, "--seed", "1",
                                 "--quiet"))
    run_command(check, transcend("data", "prepare", str(pgn), "--out", str(dataset), "--val-fraction", "0.05",
                                 "--workers", workers, "--quiet"))
    meta = json.loads((dataset / "meta.json").read_text())
    check.found["dataset"] = dataset
    return {"games": meta.get("games"), "symbols": meta.get("symbols")}


def train_command(check: Check, out: Path, steps: int, quick: bool = False) -> list[str]:
    """``train`` arguments for a fixed number of steps: bf16 autocast, a log record every step, one
    evaluation of one batch and one checkpoint at the end (the presets' intervals are longer).
    ``quick``: one sequence a step and no torch.compile, only to have a model to export."""
    s = check.settings
    args = ["train", "--data", str(check.needs("dataset", "data")), "--out", str(out), "--preset", s.preset,
            "--max-iters", str(steps), "--device", s.device, "--quiet"]
    args += ["--no-compile", "--batch-size", "1", "--grad-accum", "1"] if quick else \
        ["--compile" if s.compile else "--no-compile"]
    for setting in ("dtype=bfloat16", "log_interval=1", "eval_iters=1", "legal_prompts=0"):
        args += ["--set", setting]
    if "peak" in check.found:
        args += ["--set", f"peak_flops={check.found['peak']:g}"]
    return args


def training_figures(check: Check, run: Path) -> dict[str, Any]:
    """Throughput from the run's log.jsonl: each record covers one step, the first ``warmup_steps``
    (compilation, allocation) are left out of the medians."""
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    config = json.loads((run / "config.json").read_text())
    tokens_per_step = (config["training"]["batch_size"] * config["training"]["grad_accum"]
                       * config["model"]["block_size"])
    timed = [r for r in records if r["step"] > check.settings.warmup_steps]
    if not timed:
        raise StepError(f"{run.name}: no step after the {check.settings.warmup_steps} warm-up step(s) in log.jsonl")
    mfu = [r["mfu"] for r in timed if "mfu" in r]
    return {"steps": records[-1]["step"], "tokens_per_step": tokens_per_step,
            "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in timed)),
            "mfu": statistics.median(mfu) if mfu and "peak" in check.found else None,
            "first_step_s": round(tokens_per_step / records[0]["tokens_per_s"], 2),
            "loss": [records[0]["loss"], records[-1]["loss"]], "val_loss": records[-1].get("val_loss"),
            "peak_tflops": check.found["peak"] / 1e12 if "peak" in check.found else None}


def train(check: Check) -> dict[str, Any]:
    run = check.work / "run"
    run_command(check, transcend(*train_command(check, run, check.settings.train_steps)))
    check.found.setdefault("runs", []).append(run)
    return {"preset": check.settings.preset, "compile": check.settings.compile, **training_figures(check, run)}


def train_ddp(check: Check) -> dict[str, Any]:
    """The trainer under torchrun with one process: the launcher's environment and the DDP code path's
    set-up; with a world of one the trainer itself skips the process group and the DDP wrapper."""
    run = check.work / "run-ddp"
    run_command(check, [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
                        "-m", "transcend.cli", *train_command(check, run, check.settings.ddp_steps)])
    check.found.setdefault("runs", []).append(run)
    return {"world_size": 1, **training_figures(check, run)}


def export(check: Check) -> dict[str, Any]:
    """The first run that training left (the plain one, else the torchrun one) as fp32 and fp16 ONNX.

    When both training steps failed, one quick step makes a run of the same model, so that the steps
    after this one still measure the engine."""
    runs = check.found.get("runs")
    if runs:
        source = runs[0]
    else:
        source = check.work / "run-quick"
        run_command(check, transcend(*train_command(check, source, 1, quick=True)))
    done: dict[str, Any] = {"source": source.name}
    models: dict[str, Path] = {}
    for precision, flags in (("fp32", ["--verify"]), ("fp16", ["--quantize", "fp16"])):
        path = check.work / f"model-{precision}.onnx"
        start = time.monotonic()
        out = run_command(check, transcend("export", str(source), "-o", str(path), *flags))
        done[precision] = {"seconds": round(time.monotonic() - start, 1), "mb": round(path.stat().st_size / 1e6, 1),
                           "said": one_line(out)}
        models[precision] = path
        check.found["models"] = models
    card = json.loads(run_command(check, transcend("info", str(models["fp32"]), "--json")))
    done["parameters"] = card.get("model", {}).get("parameters")
    return done


def policy(check: Check, model: Path, ply: int, provider: str) -> dict[str, float]:
    return json.loads(run_command(check, transcend("policy", str(model), "--moves", " ".join(GAME[:ply]),
                                                   "--json", "--provider", provider)))


def parity(check: Check) -> dict[str, Any]:
    models = check.needs("models", "export")
    done: dict[str, Any] = {"reference": "fp32 on the CPU provider", "provider": check.settings.provider,
                            "plies": list(PLIES)}
    diffs: dict[str, list[float]] = {p: [] for p in models}
    same_top: dict[str, int] = {p: 0 for p in models}
    for ply in PLIES:
        reference = policy(check, models["fp32"], ply, "cpu")
        for precision, path in models.items():
            probs = policy(check, path, ply, check.settings.provider)
            if probs.keys() != reference.keys():
                raise StepError(f"{precision} at ply {ply}: a different set of legal moves than the reference")
            diffs[precision].append(max(abs(probs[m] - p) for m, p in reference.items()))
            same_top[precision] += max(probs, key=probs.get) == max(reference, key=reference.get)
    for precision in models:
        done[precision] = {"max_probability_difference": float(f"{max(diffs[precision]):.3g}"),
                           "same_most_probable_move": f"{same_top[precision]}/{len(PLIES)}"}
    return done


def open_engine(check: Check, model: Path) -> chess.engine.SimpleEngine:
    """``transcend-uci`` on ``model`` with the provider under test, as python-chess's client runs it."""
    import chess.engine

    engine = chess.engine.SimpleEngine.popen_uci(
        ["transcend-uci", "--model", str(model), "--provider", check.settings.provider, "--seed", "1"],
        timeout=max(check.deadline - time.monotonic(), 1.0), env=check.env, stderr=check.log)
    try:
        engine.ping()  # isready: readyok comes once the model is loaded and warmed up, outside the timings
    except BaseException:
        engine.close()
        raise
    return engine


def play_timed(check: Check, engine: chess.engine.SimpleEngine, board: chess.Board,
               game: object) -> tuple[chess.engine.PlayResult, float]:
    """The engine's move on ``board`` and the seconds from ``go`` to ``bestmove``; an error when it is
    no move of the model's (the engine then plays at random and says why)."""
    import chess.engine

    left = check.deadline - time.monotonic()
    if left <= 0:
        raise StepError("ran past the step's time budget")
    start = time.perf_counter()
    result = engine.play(board, chess.engine.Limit(time=min(left, 30.0)), game=game, info=chess.engine.INFO_ALL)
    seconds = time.perf_counter() - start
    said = result.info.get("string", "")
    if result.info.get("nodes") == 0 or "random" in said:
        raise StepError(f"transcend-uci played no move of the model's: {said}")
    return result, seconds


def board_at(ply: int) -> chess.Board:
    import chess

    board = chess.Board()
    for uci in GAME[:ply]:
        board.push_uci(uci)
    return board


def move_time(check: Check) -> dict[str, Any]:
    done: dict[str, Any] = {"provider": check.settings.provider, "rounds": check.settings.rounds}
    for precision, model in check.needs("models", "export").items():
        times: dict[str, float] = {}
        with open_engine(check, model) as engine:
            for ply in PLIES:
                before, board, samples = board_at(ply - 2), board_at(ply), []
                for _ in range(check.settings.rounds):
                    game = object()  # a new game each round (ucinewgame): the engine starts from an empty cache
                    play_timed(check, engine, before, game)
                    samples.append(play_timed(check, engine, board, game)[1])
                times[str(ply)] = round(statistics.median(samples) * 1000, 2)
        done[f"{precision}_median_ms"] = times
    return done


def uci_game(check: Check) -> dict[str, Any]:
    import chess

    board, game, seconds = chess.Board(), object(), []
    with open_engine(check, check.needs("models", "export")["fp32"]) as engine:
        while not board.is_game_over() and board.ply() < check.settings.game_plies:
            result, took = play_timed(check, engine, board, game)
            if not board.is_legal(result.move):
                raise StepError(f"illegal move {result.move.uci()} at ply {board.ply()}")
            board.push(result.move)
            seconds.append(took)
    return {"provider": check.settings.provider, "plies": board.ply(), "result": board.result(),
            "median_move_ms": round(statistics.median(seconds) * 1000, 2), "max_move_ms": round(max(seconds) * 1000, 2),
            "moves": " ".join(m.uci() for m in board.move_stack)}


STEPS: tuple[tuple[str, float, Callable[[Check], dict[str, Any]]], ...] = (
    ("install", 30, install), ("versions", 15, versions), ("data", 15, data), ("train", 170, train),
    ("train_ddp", 70, train_ddp), ("export", 70, export), ("parity", 45, parity), ("move_time", 30, move_time),
    ("uci_game", 15, uci_game),
)
"""Each step with its time budget in seconds: 460 s in all, so the check ends within 8 minutes."""


def run_step(check: Check, name: str, budget: float, step: Callable[[Check], dict[str, Any]]) -> dict[str, Any]:
    """Run one step within ``budget`` seconds; any failure becomes its one-line ``error``."""
    check.note(f"\n=== {name} (budget {budget:.0f} s)")
    start = time.monotonic()
    check.deadline = start + budget
    outcome: dict[str, Any] = {"status": "ok", "seconds": 0.0, "budget_s": budget}
    try:
        outcome["result"] = step(check)
    except Exception as exc:  # noqa: BLE001 - every failure is the step's, the next step still runs
        check.note(traceback.format_exc())
        text = one_line(str(exc)) if isinstance(exc, StepError) else f"{type(exc).__name__}: {one_line(str(exc))}"
        outcome.update(status="failed", error=text)
    outcome["seconds"] = round(time.monotonic() - start, 1)
    check.note(f"=== {name}: {json.dumps(outcome)}")
    return outcome


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except OSError:
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gpu_check.py", description=__doc__.split("\n\n")[0] + " It trains paper-50m on random games "
        "(bf16, torch.compile, then under torchrun), exports it, and times and compares the engine on "
        "onnxruntime's CUDA provider; one JSON report and a log come out.",
        epilog="Steps and their time budgets: " + ", ".join(f"{name} ({budget:.0f} s)" for name, budget, _ in STEPS)
        + ". A failed step is recorded with its one-line error and the next one runs; the exit status is 1 "
        "when any step failed. More in the module's docstring and the README's GPU section.")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="folder for report.json and gpu_check.log (created if missing)")
    parser.add_argument("--work", type=Path, metavar="DIR", help="folder for the data, runs and models "
                        "(default: a temporary folder, removed at the end)")
    parser.add_argument("--wheels", type=Path, metavar="DIR",
                        default=REPO / ".whl" if (REPO / ".whl").is_dir() else None,
                        help="folder of wheels to install (without an index) for distributions that are not "
                        "installed (default: .whl in the repository, when there is one)")
    parser.add_argument("--dry-run", action="store_true", help="every step on the CPU: the tiny preset, no "
                        "torch.compile, onnxruntime's CPU provider in place of CUDA")
    parser.add_argument("--print-versions", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.print_versions:
        return args
    if args.out is None:
        parser.error("--out DIR is required")
    for name in ("out", "work"):
        path = getattr(args, name)
        if path is not None and path.exists() and not path.is_dir():
            parser.error(f"--{name} {path}: not a folder")
    if args.wheels is not None and not args.wheels.is_dir():
        parser.error(f"--wheels {args.wheels}: no such folder")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_versions:
        print_versions()
        return 0
    settings = DRY_RUN if args.dry_run else GPU
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # so that run_command cleans up
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TRANSCEND_DEBUG="1", PYTHONUNBUFFERED="1")
    prepend(env, "PATH", str(Path(sys.executable).parent))
    report: dict[str, Any] = {"dry_run": args.dry_run, "commit": git_commit(), "host": platform.node(),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings": dataclasses.asdict(settings),
                              "steps": {}}
    start = time.monotonic()
    try:
        with open(args.out / "gpu_check.log", "w") as log:
            check = Check(settings, work, args.wheels, log, env)
            for name, budget, step in STEPS:
                outcome = run_step(check, name, budget, step)
                report["steps"][name] = outcome
                report["total_s"] = round(time.monotonic() - start, 1)
                (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
                print(f"{name:<10} {outcome['status']:<6} {outcome['seconds']:>6.1f} s  {outcome.get('error', '')}",
                      flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    failed = [name for name, outcome in report["steps"].items() if outcome["status"] != "ok"]
    print(f"{len(STEPS) - len(failed)} of {len(STEPS)} steps passed in {report['total_s']:.0f} s; "
          f"{args.out / 'report.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
