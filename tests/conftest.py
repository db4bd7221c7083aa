import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


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
    sizes = dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                 num_key_value_heads=2)
    prepare_sft({"source": "tiny", "tiny": sizes}, out, seed=0)
    return out


def snakemake_bin() -> str:
    exe = BIN / "snakemake"
    return str(exe) if exe.exists() else shutil.which("snakemake")
