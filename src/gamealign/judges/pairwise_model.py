"""The `pairwise_model` judge: a local causal LM asked which of two responses is better.

The RLHFlow pair-preference-model / PairRM role (DESIGN.md §5). The model sees the instruction and
responses A and B and is asked to answer with one letter; from its next-token logits,
p_A(a, b) = exp(ℓ_A) / (exp(ℓ_A) + exp(ℓ_B)). Position bias is removed by asking in both orders:

    P(a ≻ b) = ½ · [p_A(a, b) + (1 − p_A(b, a))].
"""

from __future__ import annotations

import torch

from .base import BothOrdersJudge, JudgeInputError
from .local_model import check_model_dir, conversation_ids, fingerprint
from .text import instruction_text

TEMPLATE = ("Compare two responses to the instruction below and decide which is better (more helpful, "
            "correct and relevant).\n\n[Instruction]\n{instruction}\n\n[Response A]\n{a}\n\n[Response B]\n{b}\n\n"
            "Which response is better? Answer with a single letter, A or B.")


class PairwiseModelJudge(BothOrdersJudge):
    name = "pairwise_model"


    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.get("path"), max_length=cfg.get("max_length", 1024))

    def __init__(self, path, max_length: int = 1024):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.folder = check_model_dir(path, "pairwise_model")
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.model = AutoModelForCausalLM.from_pretrained(self.folder, torch_dtype=torch.float32)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.letter_ids = [self._single_token(x) for x in ("A", "B")]
        self._fingerprint = fingerprint(self.folder)

    def _single_token(self, letter: str) -> int:
        ids = self.tokenizer.encode(letter, add_special_tokens=False)
        if len(ids) != 1:
            raise JudgeInputError(f"judge.path: {self.folder}: the tokenizer splits {letter!r} into {len(ids)} "
                                  "tokens; the pairwise judge needs A and B to be single tokens")
        return ids[0]

    def identity(self) -> dict:
        return {"name": self.name, "model": self.folder.name, "weights": self._fingerprint,
                "max_length": self.max_length, "template": TEMPLATE, "version": 1}

    @torch.no_grad()
    def p_first(self, prompt: dict, a: str, b: str) -> float:
        """p_A: the model's probability that the response shown first (A) is the better one."""
        msg = TEMPLATE.format(instruction=instruction_text(prompt), a=a, b=b)
        ids = conversation_ids(self.tokenizer, [{"role": "user", "content": msg}], self.max_length,
                               add_generation_prompt=True)
        logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0, -1].float()
        pair = torch.softmax(logits[self.letter_ids], dim=0)
        return float(pair[0])
