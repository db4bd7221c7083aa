"""Instruction following, IFEval-style (Zhou et al. 2023, arXiv 2311.07911), on the held-out prompts.

Every built-in prompt carries verifiable constraints (`meta.constraints`); a model's greedy answer is
checked with the same checkers that state them (`gamealign.constraints`), as IFEval's "strict" mode does
(the response as written; IFEval's "loose" variants that strip markdown or first/last lines are not
computed). Two accuracies, as IFEval reports them:

  prompt level       share of prompts whose constraints are all met
  instruction level  share of all constraints met (Σ met / Σ asked over prompts)

with percentile-bootstrap CIs over prompts (the instruction level as a ratio, prompts resampled whole).
No judge is involved, so this benchmark is independent of the annotator. Prompts without constraints
(e.g. from a prompt file) are skipped; a set with none is refused.

`evaluation.ifeval.source: lm_eval` runs lm-evaluation-harness's own `ifeval` task instead (`run_lm_eval_ifeval`):
lm-eval generates each model's greedy answers (its HF backend, the model's chat template) and checks them with
its copy of Google's IFEval checkers, strict and loose. `data` chooses the prompts: `heldout` — the study's held-out
prompts, each of our constraints written as the IFEval instruction that states it (`to_ifeval`; the two checkers
then score the same instructions, which is what makes the builtin scorer checkable against Google's);
`hub` — google/IFEval (online); or a JSONL file in IFEval's format (key, prompt, instruction_id_list, kwargs).
The checkers need nltk's punkt_tab data, which `make install` places in the virtual environment
(`gamealign.nltk_data`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .. import constraints as C
from ..io import DataError, read_jsonl, write_json, write_jsonl
from .stats import crossed_bootstrap_ci, truncation_rate

# Our constraint types as IFEval instructions (instruction id, kwargs). Where the two checkers read an instruction
# differently it is said here; tests/test_ifeval.py holds hand cases on which both agree, and these differences:
#   max_words n / min_words n   number_words "less than" n + 1 / "at least" n — IFEval counts \w+ runs ("don't" is
#                               two words there, one here)
#   max_sentences n             number_sentences "less than" n + 1 — IFEval splits with nltk's Punkt ("Dr. Smith"
#                               is one sentence there, two here)
#   bullets n                   number_bullet_lists n — IFEval counts lines starting "* " or "-" (also "--", "-x")
#   include w                   keywords:existence — IFEval matches w anywhere, case-insensitive ("cats" has "cat")
#   exclude w                   keywords:forbidden_words — whole word, case-insensitive, as here
#   json                        json_format — any JSON value (``` fences stripped); ours needs an object with "answer"
#   title                       title — a <<title>> anywhere; ours must open the answer
#   lowercase                   english_lowercase — also needs langdetect to say English
#   end_with p                  end_checker — case-insensitive; ours is exact
IFEVAL_INSTRUCTIONS = {
    "max_words": lambda c: ("length_constraints:number_words", {"relation": "less than", "num_words": c["n"] + 1}),
    "min_words": lambda c: ("length_constraints:number_words", {"relation": "at least", "num_words": c["n"]}),
    "max_sentences": lambda c: ("length_constraints:number_sentences",
                                {"relation": "less than", "num_sentences": c["n"] + 1}),
    "bullets": lambda c: ("detectable_format:number_bullet_lists", {"num_bullets": c["n"]}),
    "include": lambda c: ("keywords:existence", {"keywords": [c["word"]]}),
    "exclude": lambda c: ("keywords:forbidden_words", {"forbidden_words": [c["word"]]}),
    "json": lambda c: ("detectable_format:json_format", {}),
    "title": lambda c: ("detectable_format:title", {}),
    "lowercase": lambda c: ("change_case:english_lowercase", {}),
    "end_with": lambda c: ("startend:end_checker", {"end_phrase": c["phrase"]}),
}


def check(prompt: dict, text: str) -> list[dict]:
    """Each constraint of `prompt` with whether `text` meets it."""
    return [{**c, "met": bool(C.satisfied(c, text))} for c in prompt.get("meta", {}).get("constraints") or []]


def _summary(items: list[dict], ci_level: float, seed: int, model_id: str) -> dict:
    """Prompt- and instruction-level accuracy with bootstrap CIs over prompts, and the counts per constraint type
    (per IFEval instruction id for lm-eval's checkers), from per-prompt items {all_met, constraints: [{met}]}."""
    met = np.array([[sum(c["met"] for c in it["constraints"]) for it in items]], dtype=float)
    asked = np.array([[len(it["constraints"]) for it in items]], dtype=float)
    prompt_level = crossed_bootstrap_ci([[float(it["all_met"]) for it in items]], ci_level, seed=seed)
    inst_level = crossed_bootstrap_ci(met, ci_level, seed=seed, denominator=asked)
    per_type: dict[str, dict] = {}
    for it in items:
        for c in it["constraints"]:
            t = per_type.setdefault(c.get("type") or c["instruction_id"], {"asked": 0, "met": 0})
            t["asked"] += 1
            t["met"] += int(c["met"])
    return {"benchmark": "ifeval", "model_id": model_id,
            "prompt_level": prompt_level[0], "prompt_level_ci_low": prompt_level[1],
            "prompt_level_ci_high": prompt_level[2],
            "instruction_level": inst_level[0], "instruction_level_ci_low": inst_level[1],
            "instruction_level_ci_high": inst_level[2], "ci_level": ci_level,
            "ci_method": "percentile bootstrap over prompts (2000 resamples; instruction level as a ratio)",
            "mode": "strict", "n_prompts": len(items), "n_instructions": int(asked.sum()), "per_type": per_type}


def score_ifeval(*, prompts_path, generations_path, out_json, out_items, ci_level=0.95, seed=0, model_id="") -> dict:
    prompts = [p for p in read_jsonl(prompts_path, required=("id", "messages")) if p.get("meta", {}).get("constraints")]
    if not prompts:
        raise DataError(f"{prompts_path}: no prompt has verifiable constraints (meta.constraints); ifeval needs "
                        "the built-in prompts or a prompt file that carries them")
    answers = {r["prompt_id"]: r for r in read_jsonl(generations_path, required=("prompt_id", "text"))}
    missing = [p["id"] for p in prompts if p["id"] not in answers]
    if missing:
        raise DataError(f"{generations_path}: no answer for {len(missing)} prompt(s), e.g. {missing[0]}")
    items = [{"prompt_id": p["id"], "constraints": check(p, answers[p["id"]]["text"])} for p in prompts]
    for it in items:
        it["all_met"] = all(c["met"] for c in it["constraints"])
    rows = [answers[p["id"]] for p in prompts]
    result = _summary(items, ci_level, seed, model_id)
    result.update({"source": "builtin", "checkers": "gamealign.constraints", "data": str(prompts_path),
                   "mean_response_tokens": sum(r.get("n_tokens") or 0 for r in rows) / len(rows),
                   "truncation_rate": truncation_rate(rows), "items_file": str(out_items)})
    write_jsonl(out_items, items)
    write_json(out_json, result)
    return result


def to_ifeval(prompts: list[dict]) -> list[dict]:
    """The study's constraint prompts as IFEval rows (key, prompt, instruction_id_list, kwargs), each also carrying
    its `prompt_id`. A prompt must be one user message (the held-out prompts are); one without constraints is
    skipped, as the builtin scorer skips it."""
    rows = []
    for p in prompts:
        cons = p.get("meta", {}).get("constraints") or []
        if not cons:
            continue
        msgs = p["messages"]
        if len(msgs) != 1 or msgs[0].get("role") != "user":
            raise DataError(f"prompt {p['id']}: IFEval rows are one user message, this prompt has "
                            f"{[m.get('role') for m in msgs]}")
        ids, kwargs = [], []
        for c in cons:
            if c["type"] not in IFEVAL_INSTRUCTIONS:
                raise DataError(f"prompt {p['id']}: constraint type {c['type']!r} has no IFEval instruction")
            i, kw = IFEVAL_INSTRUCTIONS[c["type"]](c)
            ids.append(i)
            kwargs.append(kw)
        rows.append({"key": len(rows), "prompt": msgs[0]["content"], "instruction_id_list": ids, "kwargs": kwargs,
                     "prompt_id": p["id"]})
    if not rows:
        raise DataError("no prompt has verifiable constraints (meta.constraints) to write as IFEval rows")
    return rows


def _lm_eval_task(out_dir: Path, data_file: str | None, max_gen_toks: int) -> str:
    """A task YAML that `include`s lm-eval's own ifeval task (its prompts, checkers and metrics unchanged), reading
    `data_file` (IFEval's JSONL format) instead of the hub when given, with the study's answer length."""
    import lm_eval
    import yaml

    cfg = {"include": str(Path(lm_eval.__file__).parent / "tasks" / "ifeval" / "ifeval.yaml"), "task": "ga_ifeval",
           "tag": [], "generation_kwargs": {"until": [], "do_sample": False, "temperature": 0.0,
                                            "max_gen_toks": int(max_gen_toks)}}
    if data_file:
        cfg.update({"dataset_path": "json", "dataset_name": None, "test_split": "train",
                    "dataset_kwargs": {"data_files": {"train": str(Path(data_file).resolve())}}})
    (out_dir / "ga_ifeval.yaml").write_text(yaml.safe_dump(cfg, sort_keys=True))
    return cfg["task"]


def run_lm_eval_ifeval(*, model_path, params: dict, prompts_path, out_json, out_items, out_raw, max_new_tokens: int,
                       batch_size: int, ci_level=0.95, seed=0, model_id="", system_prompt: str | None = None) -> dict:
    """lm-evaluation-harness's `ifeval` task on one model (`source: lm_eval`): its answers and checkers, our CIs.
    Writes the same score and items files as `score_ifeval` (items keyed by our prompt id for `data: heldout`, by
    IFEval's key otherwise; each instruction met or not, strict), plus lm-eval's raw results (`out_raw`)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from .. import nltk_data
    from ..provenance import package_version
    from .leaderboard import _jsonable, hf_lm

    if not nltk_data.installed():
        raise FileNotFoundError("lm-eval's ifeval checkers need nltk's punkt_tab data, which is not installed: run "
                                "`python -m gamealign.nltk_data` (make install does)")
    data = params.get("data") or "heldout"
    max_gen_toks = params.get("max_gen_toks") or max_new_tokens
    from langdetect import DetectorFactory

    DetectorFactory.seed = seed   # the english_lowercase checker's language guess is random unless seeded
    lm = hf_lm(model_path, batch_size, offline=data != "hub")
    with tempfile.TemporaryDirectory(prefix="gamealign-ifeval-") as tmp:
        if data == "heldout":
            data_file = Path(tmp) / "ifeval_heldout.jsonl"
            write_jsonl(data_file, to_ifeval(read_jsonl(prompts_path, required=("id", "messages"))))
        elif data == "hub":
            data_file = None
        else:
            data_file = Path(data)
            if not data_file.is_file():
                raise DataError(f"evaluation.ifeval.data: {data_file} is not a file (heldout, hub or an IFEval JSONL)")
            read_jsonl(data_file, required=("key", "prompt", "instruction_id_list", "kwargs"))
        name = _lm_eval_task(Path(tmp), str(data_file) if data_file else None, max_gen_toks)
        res = simple_evaluate(model=lm, tasks=[name], task_manager=TaskManager(include_path=tmp, include_defaults=False),
                              limit=params.get("limit"), log_samples=True, apply_chat_template=True,
                              system_instruction=system_prompt,
                              bootstrap_iters=0, random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                              fewshot_random_seed=seed)
    items, rows = [], []
    for s in sorted(res["samples"][name], key=lambda s: s["doc_id"]):
        doc, text = s["doc"], s["filtered_resps"][0]
        n_tokens = len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
        items.append({"prompt_id": str(doc.get("prompt_id", doc["key"])), "all_met": bool(s["prompt_level_strict_acc"]),
                      "all_met_loose": bool(s["prompt_level_loose_acc"]),
                      "constraints": [{"instruction_id": i, "kwargs": kw, "met": bool(m)} for i, kw, m in
                                      zip(doc["instruction_id_list"], doc["kwargs"], s["inst_level_strict_acc"])],
                      "text": text, "n_tokens": n_tokens})
        rows.append({"n_tokens": n_tokens, "finish_reason": "length" if n_tokens >= max_gen_toks else "stop"})
    if not items:
        raise DataError(f"lm-eval's ifeval task returned no samples for {model_path}")
    lm_eval_metrics = {k.split(",")[0]: v for k, v in res["results"][name].items()
                       if k.endswith(",none") and "stderr" not in k}
    result = _summary(items, ci_level, seed, model_id)
    result.update({"source": "lm_eval", "checkers": "lm-evaluation-harness ifeval (Google's IFEval checkers)",
                   "data": "google/IFEval (hub)" if data_file is None else
                   (f"{prompts_path} (as IFEval rows)" if data == "heldout" else str(data_file)),
                   "lm_eval_metrics": lm_eval_metrics, "lm_eval_version": package_version("lm-eval") or "unknown",
                   "max_gen_toks": max_gen_toks, "limit": params.get("limit"), "chat_template": True,
                   "system_prompt": system_prompt,
                   "mean_response_tokens": sum(r["n_tokens"] for r in rows) / len(rows),
                   "truncation_rate": truncation_rate(rows), "items_file": str(out_items), "raw_file": str(out_raw)})
    write_jsonl(out_items, items)
    write_json(out_raw, _jsonable({k: res.get(k) for k in ("results", "configs", "versions", "n-samples")}))
    write_json(out_json, result)
    return result
