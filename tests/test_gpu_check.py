"""benchmarks/gpu_check.py: its dry run passes every step on the CPU, so the check is ready the day a GPU
is lent; one failing or overlong step is recorded in one line and the others still run."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


def a_check(gpu_check, tmp_path: Path, **found):
    return gpu_check.Check(gpu_check.DRY_RUN, tmp_path, None, io.StringIO(), dict(os.environ), dict(found))


@pytest.mark.slow
def test_dry_run_passes_every_step_and_reports_its_figures(tmp_path, gpu_check):
    start = time.monotonic()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(tmp_path / "out"),
                           "--work", str(tmp_path / "work")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert time.monotonic() - start < sum(budget for _, budget, _ in gpu_check.STEPS)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    steps = report["steps"]
    assert report["dry_run"] is True
    assert {name: s["status"] for name, s in steps.items()} == {name: "ok" for name, _, _ in gpu_check.STEPS}
    assert all(s["seconds"] <= s["budget_s"] for s in steps.values())
    assert steps["versions"]["result"]["torch"] and steps["versions"]["result"]["onnxruntime_providers"]
    for name, count in (("train", gpu_check.DRY_RUN.train_steps), ("train_ddp", gpu_check.DRY_RUN.ddp_steps)):
        assert steps[name]["result"]["steps"] == count and steps[name]["result"]["tokens_per_s"] > 0
    assert steps["export"]["result"]["source"] == "run"
    assert "verify: largest logit difference" in steps["export"]["result"]["fp32"]["said"]
    parity = steps["parity"]["result"]
    assert parity["fp32"]["max_probability_difference"] < 1e-5  # the CPU provider against itself
    assert parity["fp16"]["max_probability_difference"] < 0.05
    for precision in ("fp32", "fp16"):
        assert set(steps["move_time"]["result"][f"{precision}_median_ms"]) == {"20", "60", "100"}
    assert steps["uci_game"]["result"]["plies"] == gpu_check.DRY_RUN.game_plies
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    assert "=== uci_game" in log and "torch.distributed.run" in log

    # Both training steps failed: export still makes a model, from one quick step of its own.
    check = a_check(gpu_check, tmp_path / "work", dataset=tmp_path / "work" / "data")
    outcome = gpu_check.run_step(check, "export", 120, gpu_check.export)
    assert outcome["status"] == "ok", outcome
    assert outcome["result"]["source"] == "run-quick" and set(check.found["models"]) == {"fp32", "fp16"}


def test_a_failing_step_is_one_line_and_names_its_command(tmp_path, gpu_check):
    check = a_check(gpu_check, tmp_path)
    command = [sys.executable, "-c", "import sys; print('noise', file=sys.stderr); sys.exit('bad thing\\n')"]
    outcome = gpu_check.run_step(check, "boom", 30, lambda c: gpu_check.run_command(c, command))
    assert outcome["status"] == "failed"
    assert outcome["error"].endswith(": bad thing") and "\n" not in outcome["error"]
    assert "noise" in check.log.getvalue()

    outcome = gpu_check.run_step(check, "lacks", 30, lambda c: c.needs("models", "export"))
    assert outcome["error"] == "needs the models that step export makes, and it did not"


def test_a_step_past_its_budget_is_stopped_with_its_children(tmp_path, gpu_check):
    check = a_check(gpu_check, tmp_path)
    pid_file = tmp_path / "child.pid"
    parent = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
              f"time.sleep(60)']); open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    start = time.monotonic()
    outcome = gpu_check.run_step(check, "slow", 2, lambda c: gpu_check.run_command(c, [sys.executable, "-c", parent]))
    assert time.monotonic() - start < 10
    assert outcome["status"] == "failed" and "ran past the step's time budget" in outcome["error"]
    child = int(pid_file.read_text())
    for _ in range(50):  # the killed child is reaped by init; wait for it to go
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the step's child process outlived its budget")


@pytest.mark.parametrize("args, message", [
    (["--out", "{file}"], "--out {file}: not a folder"),
    (["--out", "{tmp}", "--wheels", "{tmp}/none"], "--wheels {tmp}/none: no such folder"),
    ([], "--out DIR is required"),
])
def test_bad_input_is_a_one_line_error(tmp_path, args, message):
    (tmp_path / "file").write_text("")
    fill = {"file": str(tmp_path / "file"), "tmp": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(SCRIPT), *(a.format(**fill) for a in args)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"gpu_check.py: error: {message.format(**fill)}"


def test_install_adds_wheels_of_missing_distributions_only(tmp_path, gpu_check, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # install puts its folder first for this process too
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    info = "gpucheckprobe-1.0.dist-info"
    files = {"gpucheckprobe/__init__.py": "VALUE = 42\n",
             f"{info}/METADATA": "Metadata-Version: 2.1\nName: gpucheckprobe\nVersion: 1.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(wheels / "gpucheckprobe-1.0-py3-none-any.whl", "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    (wheels / "chess-0.0-py3-none-any.whl").write_text("installed already: never opened")
    check = a_check(gpu_check, tmp_path)
    check.wheels = wheels
    outcome = gpu_check.run_step(check, "install", 120, gpu_check.install)
    assert outcome["status"] == "ok", outcome
    assert outcome["result"]["installed"] == ["gpucheckprobe-1.0-py3-none-any.whl"]
    probe = subprocess.run([sys.executable, "-c", "import gpucheckprobe; print(gpucheckprobe.VALUE)"], env=check.env,
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "42", probe.stderr


def test_without_pip_transcend_runs_from_its_source(tmp_path, gpu_check):
    check = a_check(gpu_check, tmp_path)
    gpu_check.commands_from_source(check)
    assert Path(shutil.which("transcend", path=check.env["PATH"])).parent == tmp_path / "bin"
    version = subprocess.run(["transcend", "--version"], env=check.env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip(), version.stderr
    uci = subprocess.run(["transcend-uci"], input="uci\nquit\n", env=check.env, capture_output=True, text=True,
                         timeout=60)
    assert "uciok" in uci.stdout, uci.stderr
