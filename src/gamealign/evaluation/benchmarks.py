"""Benchmark prompt sets and reference answers: AlpacaEval 2.0 and Arena-Hard-Auto v0.1.

Each loader returns (prompts, references): prompts in the study's `{id, messages, meta}` format,
references as `{prompt_id, text, generator}` rows (the baseline the benchmark compares against).
Sources: a local file in the benchmark's own release format (offline), or the hub when online.
"""

from __future__ import annotations

from ..io import DataError, read_json, read_jsonl

ALPACA_EVAL_HUB = ("tatsu-lab/alpaca_eval", "alpaca_eval_gpt4_baseline")  # dataset id, config


def load_alpaca_eval(path: str | None, limit: int | None = None) -> tuple[list[dict], list[dict]]:
    """AlpacaEval 2.0: 805 instructions with gpt4_1106_preview reference outputs.

    `path`: a JSON list of `{dataset, instruction, output, generator}` (the format of alpaca_eval's
    results/<model>/model_outputs.json); None loads tatsu-lab/alpaca_eval from the hub (online only).
    """
    if path:
        rows = read_json(path)
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of AlpacaEval records")
    else:
        from datasets import load_dataset

        rows = list(load_dataset(ALPACA_EVAL_HUB[0], "alpaca_eval_gpt4_baseline", split="eval"))
    prompts, refs = [], []
    for n, r in enumerate(rows[:limit] if limit else rows):
        for key in ("instruction", "output"):
            if not isinstance(r.get(key), str):
                raise DataError(f"{path}: record {n}: missing or non-text '{key}'")
        pid = f"alpaca-{n:04d}"
        prompts.append({"id": pid, "messages": [{"role": "user", "content": r["instruction"]}],
                        "meta": {"source": "alpaca_eval", "dataset": r.get("dataset"), "index": n}})
        refs.append({"prompt_id": pid, "text": r["output"], "generator": r.get("generator", "reference")})
    return prompts, refs


def _answer_text(content) -> str:
    if isinstance(content, dict):
        return content.get("answer", "")
    return content or ""


def load_arena_hard(questions: str, answers: str | None, limit: int | None = None) -> tuple[list[dict], list[dict]]:
    """Arena-Hard-Auto v0.1: 500 questions (`{uid, category, cluster, prompt}` or `turns`) and the
    baseline's answers (`{uid, model, messages: [..., {role: assistant, content: {answer}}]}` or
    `choices[0].turns[0].content`)."""
    qs = read_jsonl(questions, required=("uid",))
    if limit:
        qs = qs[:limit]
    prompts = []
    for n, q in enumerate(qs):
        text = q.get("prompt")
        if text is None and q.get("turns"):
            text = q["turns"][0].get("content")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{questions}:{n + 1}: question {q['uid']} has no prompt text")
        prompts.append({"id": q["uid"], "messages": [{"role": "user", "content": text}],
                        "meta": {"source": "arena_hard", "category": q.get("category"), "cluster": q.get("cluster")}})
    refs = []
    if answers:
        by_uid = {}
        for n, a in enumerate(read_jsonl(answers, required=("uid",))):
            if "messages" in a:
                text = next((_answer_text(m.get("content")) for m in a["messages"] if m.get("role") == "assistant"), "")
            else:
                text = a.get("choices", [{}])[0].get("turns", [{}])[0].get("content", "")
            by_uid[a["uid"]] = {"prompt_id": a["uid"], "text": text, "generator": a.get("model", "baseline")}
        missing = [p["id"] for p in prompts if p["id"] not in by_uid]
        if missing:
            raise DataError(f"{answers}: no baseline answer for {len(missing)} question(s), e.g. {missing[0]}")
        refs = [by_uid[p["id"]] for p in prompts]
    return prompts, refs
