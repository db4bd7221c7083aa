"""The `reward_model` judge: a local HF sequence-classification reward model (Bradley–Terry).

P(y_i ≻ y_j) = σ(r(x, y_i) − r(x, y_j)), where r is the model's single logit on the conversation
(prompt + response through the tokenizer's chat template). Each (prompt, response) is scored once
per process, so judging K responses costs K forward passes, not K(K−1)/2.
"""

from __future__ import annotations

import math

import torch

from .base import Judge, JudgeInputError
from .local_model import check_model_dir, conversation_ids, fingerprint


class RewardModelJudge(Judge):
    name = "reward_model"


    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.get("path"), max_length=cfg.get("max_length", 1024), batch_size=cfg.get("batch_size", 8))

    def __init__(self, path, max_length: int = 1024, batch_size: int = 8):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.folder = check_model_dir(path, "reward_model")
        self.max_length, self.batch_size = max_length, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.folder, torch_dtype=torch.float32)
        if self.model.config.num_labels != 1:
            raise JudgeInputError(f"judge.path: {self.folder} has {self.model.config.num_labels} labels; a reward "
                                  "model has one output (num_labels = 1)")
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.pad_id
        self._fingerprint = fingerprint(self.folder)
        self._memo: dict[tuple, float] = {}

    def identity(self) -> dict:
        return {"name": self.name, "model": self.folder.name, "weights": self._fingerprint,
                "max_length": self.max_length, "version": 1}

    @torch.no_grad()
    def rewards(self, prompt: dict, texts: list[str]) -> list[float]:
        key = tuple((m["role"], m["content"]) for m in prompt["messages"])
        todo = [t for t in dict.fromkeys(texts) if (key, t) not in self._memo]
        for s in range(0, len(todo), self.batch_size):
            part = todo[s:s + self.batch_size]
            seqs = [conversation_ids(self.tokenizer, prompt["messages"] + [{"role": "assistant", "content": t}],
                                     self.max_length, add_generation_prompt=False) for t in part]
            width = max(len(x) for x in seqs)
            # right padding: the classifier reads the last non-pad token of each row
            ids = torch.tensor([x + [self.pad_id] * (width - len(x)) for x in seqs], device=self.device)
            attn = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in seqs], device=self.device)
            logits = self.model(input_ids=ids, attention_mask=attn).logits[:, 0].float().cpu().tolist()
            for t, r in zip(part, logits):
                if not math.isfinite(r):
                    raise JudgeInputError(f"judge reward_model: non-finite reward {r} for prompt {prompt.get('id', '?')}")
                self._memo[(key, t)] = r
        return [self._memo[(key, t)] for t in texts]

    def judge(self, prompt, responses, pairs):
        """Bradley–Terry on the rewards: every response of the batch scored in one pass (batch_size rows each)."""
        needed = sorted({i for pair in pairs for i in pair})
        r = dict(zip(needed, self.rewards(prompt, [responses[i] for i in needed])))
        return [1.0 / (1.0 + math.exp(-(r[i] - r[j]))) for i, j in pairs]
