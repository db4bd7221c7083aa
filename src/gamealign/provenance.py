"""What an artifact's manifest records: config slice + hash, git commit, versions, seed, device."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from .config import config_hash

PACKAGES = ("gamealign", "torch", "transformers", "accelerate", "snakemake", "numpy", "pandas")


def git_commit() -> dict:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
        return {"commit": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        # a copy of the code without .git (the GPU machine's working tree): the commit its sender named, if any
        return {"commit": os.environ.get("GAMEALIGN_GIT_COMMIT") or "unknown", "dirty": None}


def package_version(name: str) -> str | None:
    """The installed version of distribution `name`, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        if (v := package_version(name)) is not None:
            out[name] = v
    return out


def device_info() -> dict:
    try:
        import torch

        if torch.cuda.is_available():
            return {"device": "cuda", "name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count()}
        return {"device": "cpu", "threads": torch.get_num_threads(), "machine": platform.machine()}
    except ImportError:
        return {"device": "cpu"}


def manifest(stage: str, params: dict, seed: int | None, **extra) -> dict:
    return {"stage": stage, "params": params, "config_hash": config_hash(params), "seed": seed,
            "git": git_commit(), "versions": versions(), "device": device_info(), **extra}
