"""Reproduce and share: DVC push/pull through a real local remote, report regeneration without
recomputation, byte-identical reruns, and a SIGKILL mid-training followed by a restart."""

import filecmp
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import LEADERBOARD_DATA, REPO, clone_project, drop_leaderboard, link_shared_data, run, snakemake_bin

pytestmark = pytest.mark.slow
VENV = Path(sys.executable).parent.parent
DVC = str(Path(sys.executable).parent / "dvc")
ARTIFACTS = ["prompts/train_r1.jsonl", "prompts/eval_heldout.jsonl", "runs/shared/r1/samples.jsonl",
             "runs/shared/r1/prefs.parquet", "runs/inpo/r2/samples.jsonl", "runs/inpo/r2/prefs.parquet",
             "runs/spac/r2/samples.jsonl", "eval/wind-r2/heldout_generations.jsonl",
             "report/comparison.csv", "report/comparison.md"]


def executed_rules(snakemake_output: str) -> set[str]:
    return set(re.findall(r"^\s*(?:local)?rule (\w+):", snakemake_output, flags=re.M))


def test_dvc_push_clone_pull_regenerates_only_the_report(smoke_project, env):
    a = smoke_project
    run([DVC, "commit", "-f", "study"], a, env)
    run("git add dvc.lock && git -c user.name=t -c user.email=t@t commit -qm results", a, env)
    pushed = run([DVC, "push"], a, env)
    remote = a.parent / "gamealign-dvc-remote"       # the default remote: beside the clone
    assert remote.is_dir() and any(remote.rglob("*")), pushed.stdout

    b = a.parent / "b"
    run(["git", "clone", "-q", str(a), str(b)], a.parent, env)
    assert not (b / "results/report").exists()
    run([DVC, "pull"], b, env)
    assert (b / "results/runs/shared/r1/prefs.parquet").exists()
    assert (b / "results/benchmarks/train/dpo_r1.tsv").exists()   # the run's measured timings travel too
    (b / "results/report/comparison.csv").unlink()            # it must be regenerated, not just pulled
    proc = run(["make", "-o", "install", "report", f"VENV={VENV}", "CONFIG=configs/smoke.yaml"], b, env)
    out = proc.stdout + proc.stderr
    assert "all" in out and "artifacts present" in out
    assert executed_rules(out) == {"report", "all"}, out[-3000:]
    for name in ("comparison.csv", "comparison.md"):
        assert filecmp.cmp(a / "results/report" / name, b / "results/report" / name, shallow=False), name


def test_report_refuses_when_an_artifact_is_missing(smoke_project, env, tmp_path):
    c = clone_project(smoke_project, tmp_path / "c", env)
    # c has the code but no results: the check must name what is missing and touch nothing
    proc = run(["make", "-o", "install", "report", f"VENV={VENV}", "CONFIG=configs/smoke.yaml"], c, env, check=False)
    assert proc.returncode != 0
    assert "artifact(s) missing" in proc.stderr and "results/runs/shared/r1/samples.jsonl" in proc.stderr
    assert not (c / "results/runs").exists()


def test_sigkill_during_training_then_restart_matches_an_uninterrupted_run(smoke_project, env, tmp_path):
    d = clone_project(REPO, tmp_path / "d", env)
    link_shared_data(tmp_path)
    if not LEADERBOARD_DATA.is_dir():
        drop_leaderboard(d, env)
    cmd = [snakemake_bin(), "--cores", "2", "--configfile", "configs/smoke.yaml"]
    proc = subprocess.Popen(cmd, cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)
    train_log = d / "results/logs/train"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if train_log.is_dir() and any(train_log.iterdir()):
            time.sleep(1.5)  # let the training job get going
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the study finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = {p.relative_to(d) for p in (d / "results").rglob("*") if p.is_file()
                       and ".tmp-" not in str(p) and "logs" not in p.parts and "cache" not in p.parts}
    mtimes = {p: (d / p).stat().st_mtime_ns for p in finished_before}
    # nothing that looks finished is half-written: every model folder that exists is complete
    for model in (d / "results/runs").glob("*/r*/model"):
        assert (model / "manifest.json").exists() and (model / "model.safetensors").exists()

    # the README's restart: unlock, then rerun with --rerun-incomplete (as `make study`'s profile does):
    # a job killed after writing its outputs but before Snakemake recorded it as finished has them
    # marked incomplete, and only such jobs may be rerun besides the unfinished ones
    run([snakemake_bin(), "--unlock", "--configfile", "configs/smoke.yaml"], d, env)
    plan = run(cmd + ["-n"], d, env, check=False)
    listing = (plan.stdout + plan.stderr).partition("Incomplete files:\n")[2]
    incomplete = {Path(line.strip()) for line in listing.splitlines() if line.strip()}
    out = run(cmd + ["--rerun-incomplete"], d, env)
    log = out.stdout + out.stderr
    # finished jobs were not rerun: their outputs were left untouched
    for p, t in mtimes.items():
        if p not in incomplete:
            assert (d / p).stat().st_mtime_ns == t, f"{p} was rewritten"
    assert "train" in executed_rules(log)
    # the final artifacts equal the uninterrupted run's, byte for byte (CPU determinism)
    for rel in ARTIFACTS:
        assert filecmp.cmp(smoke_project / "results" / rel, d / "results" / rel, shallow=False), rel
