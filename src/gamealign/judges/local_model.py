"""What the two local-model judges share: checking the model folder, its fingerprint, tokenising a conversation."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .base import JudgeInputError


def check_model_dir(path, role: str) -> Path:
    """The judge's model folder, or a JudgeInputError naming `judge.path` and what is wrong."""
    if not path:
        raise JudgeInputError(f"judge.path: the {role} judge needs a local model folder")
    folder = Path(path)
    if not folder.is_dir():
        raise JudgeInputError(f"judge.path: {folder} does not exist (the {role} judge loads a local HF model)")
    if not (folder / "config.json").is_file():
        raise JudgeInputError(f"judge.path: {folder} has no config.json (not a saved HF model)")
    return folder


def fingerprint(folder: Path) -> str:
    """sha256 over the config and weight files, so a judge's cache entries follow its weights, not its path."""
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.suffix in (".json", ".safetensors", ".bin") and f.is_file():
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def conversation_ids(tokenizer, messages: list[dict], max_length: int, add_generation_prompt: bool) -> list[int]:
    """Token ids of `messages` through the tokenizer's chat template (plain text without one), left-truncated."""
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
    else:
        text = "\n\n".join(m["content"] for m in messages)
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    return list(ids)[-max_length:]
