import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# the tiny random-init Llama of the fast tests (SmolLM2's tokenizer)
TINY_SIZES = dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                  num_key_value_heads=2)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def env() -> dict:
    """Environment for subprocesses: the venv's bin first on PATH (snakemake, gamealign)."""
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e["HF_HUB_OFFLINE"] = "1"
    e["TOKENIZERS_PARALLELISM"] = "false"
    return e


@pytest.fixture(scope="session")
def tiny_sft(tmp_path_factory) -> Path:
    """A tiny random-init Llama with SmolLM2's tokenizer, prepared once per session."""
    from gamealign.models import prepare_sft

    out = tmp_path_factory.mktemp("tiny") / "sft"
    prepare_sft({"source": "tiny", "tiny": TINY_SIZES}, out, seed=0)
    return out


def snakemake_bin() -> str:
    exe = BIN / "snakemake"
    return str(exe) if exe.exists() else shutil.which("snakemake")


def free_port() -> int:
    """A TCP port free on localhost now, for a launcher's rendezvous."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, cwd, env, check=True, **kw):
    import subprocess

    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, shell=isinstance(cmd, str), **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def clone_project(src: Path, dest: Path, env) -> Path:
    """A git project holding the working tree's tracked files as they are now (committed or not)."""
    import subprocess

    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=src,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for f in filter(None, files):
        if (src / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / f, dest / f)
    run("git init -q -b main && git add -A && git -c user.name=t -c user.email=t@t commit -qm snapshot", dest, env)
    return dest


SHARED = REPO.parent / "shared"
LEADERBOARD_DATA = SHARED / "data" / "open_llm_leaderboard"
NO_LEADERBOARD_DATA = f"{LEADERBOARD_DATA} is absent (the Open LLM Leaderboard task data; see README)"


def link_shared_data(parent: Path) -> None:
    """Give projects under `parent` the repository's `../shared` (configs name ../shared/data/...)."""
    if SHARED.is_dir() and not (parent / "shared").exists():
        (parent / "shared").symlink_to(SHARED.resolve(), target_is_directory=True)


def drop_leaderboard(project: Path, env) -> None:
    """Without the task data, the smoke study runs without the open_llm benchmark."""
    import yaml

    path = project / "configs" / "smoke.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["evaluation"]["benchmarks"].remove("open_llm")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run("git -c user.name=t -c user.email=t@t commit -qam 'smoke: no leaderboard data'", project, env)


@pytest.fixture(scope="session")
def smoke_project(tmp_path_factory, env):
    """A project copy in which the smoke study has run once (uninterrupted), via real snakemake."""
    root = tmp_path_factory.mktemp("shared-parent")
    proj = clone_project(REPO, root / "a", env)
    link_shared_data(root)
    if not LEADERBOARD_DATA.is_dir():
        drop_leaderboard(proj, env)
    proc = run([snakemake_bin(), "--cores", "2", "--configfile", "configs/smoke.yaml"], proj, env, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proj
