"""The benchmarks' own judging protocols (`evaluation.protocol: official`), against any OpenAI-compatible endpoint.

- AlpacaEval 2.0: alpaca_eval's own annotator (`evaluation.alpaca_eval.annotator`, by default
  `weighted_alpaca_eval_gpt4_turbo`: its prompt, one token with log-probs, P from the "m"/"M" tokens) run by
  alpaca_eval's `PairwiseAnnotator`, pointed at `judge.http.base_url` through an alpaca_eval client config; the
  win rate is the mean preference and the length-controlled win rate alpaca_eval's GLM (`alpaca_eval_metrics`).
- Arena-Hard-Auto v0.1: arena-hard-auto's judge system prompt and template (its `config/judge_config.yaml`),
  two games per question (the baseline shown first, then the model), the verdict the last `[[...]]` label of the
  judgment (asked once more to finish when it has none), verdicts weighted as arena-hard-auto weighs them
  (A>>B and B>>A count as 3 battles, the others as 1, a tie ½ each way), then the Bradley–Terry score vs the
  baseline with its bootstrap CI (`arena_hard.score`).

Score files name the protocol, the annotator config and the packages' versions. A question the judge never
labelled stops scoring with an error naming it: no score is written from partial annotations.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from ..io import DataError, write_json, write_jsonl
from ..judges.base import JudgeServiceError
from . import arena_hard as AH
from .scoring import is_the_baseline, load_answers
from .stats import bootstrap_mean_ci, truncation_rate

# arena-hard-auto config/judge_config.yaml (bench arena-hard-v0.1; lmarena/arena-hard-auto @7f1b7f5)
ARENA_HARD_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user prompt displayed below. You will be given assistant A's answer and assistant B's answer. Your job is "
    "to evaluate which assistant's answer is better.\n\nBegin your evaluation by generating your own answer to the "
    "prompt. You must provide your answers before judging any answers.\n\nWhen evaluating the assistants' answers, "
    "compare both assistants' answers with your answer. You must identify and correct any mistakes or inaccurate "
    "information.\n\nThen consider if the assistant's answers are helpful, relevant, and concise. Helpful means "
    "the answer correctly responds to the prompt or follows the instructions. Note when user prompt has any "
    "ambiguity or more than one interpretation, it is more helpful and appropriate to ask for clarifications or "
    "more information from the user than providing an answer based on assumptions. Relevant means all parts of "
    "the response closely connect or are appropriate to what is being asked. Concise means the response is clear "
    "and not verbose or excessive.\n\nThen consider the creativity and novelty of the assistant's answers when "
    "needed. Finally, identify any missing important information in the assistants' answers that would be "
    "beneficial to include when responding to the user prompt.\n\nAfter providing your explanation, you must "
    "output only one of the following choices as your final verdict with a label:\n\n1. Assistant A is "
    "significantly better: [[A>>B]]\n2. Assistant A is slightly better: [[A>B]]\n3. Tie, relatively the same: "
    "[[A=B]]\n4. Assistant B is slightly better: [[B>A]]\n5. Assistant B is significantly better: [[B>>A]]\n\n"
    "Example output: \"My final verdict is tie: [[A=B]]\".")
ARENA_HARD_TEMPLATE = ("<|User Prompt|>\n{question_1}\n\n<|The Start of Assistant A's Answer|>\n{answer_1}\n"
                       "<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{answer_2}\n"
                       "<|The End of Assistant B's Answer|>")
ARENA_HARD_CONFIG = "arena-hard-auto config/judge_config.yaml (arena-hard-v0.1), lmarena/arena-hard-auto@7f1b7f5"
VERDICT = re.compile(r"\[\[([AB<>=]+)\]\]")
# P(A wins) and the number of battles each verdict counts for (arena-hard-auto show_result.py: WEIGHT = 3)
VERDICTS = {"A>>B": (1.0, 3), "A>B": (1.0, 1), "A=B": (0.5, 1), "B>A": (0.0, 1), "B>>A": (0.0, 3)}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("alpaca-eval", "openai"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _http(judge_cfg: dict) -> dict:
    http = judge_cfg.get("http") or {}
    if judge_cfg.get("name") != "http" or not http.get("base_url"):
        raise DataError("evaluation.protocol official: the evaluation judge must be the http judge with "
                        "judge.http.base_url (the benchmarks' own annotators ask an OpenAI-compatible endpoint)")
    return http


# --- AlpacaEval -------------------------------------------------------------------------------------------
def _alpaca_eval_config(annotator: str, http: dict, workdir: Path) -> Path:
    """alpaca_eval's own annotator config, pointed at the endpoint: the same prompt, decoding and parser, with the
    judge's model name and an alpaca_eval client config holding the endpoint's URL and key."""
    import yaml
    from alpaca_eval import constants

    src = Path(constants.EVALUATORS_CONFIG_DIR) / annotator / "configs.yaml"
    if not src.is_file():
        raise DataError(f"evaluation.alpaca_eval.annotator: alpaca_eval has no annotator config {annotator!r}")
    cfg = yaml.safe_load(src.read_text())
    model = http.get("model") or cfg[annotator]["completions_kwargs"]["model_name"]
    clients = workdir / "openai_configs.yaml"
    clients.write_text(yaml.safe_dump({model: [{"api_key": os.environ.get(http.get("api_key_env") or "", "") or "none",
                                                "base_url": http["base_url"]}]}))
    entry = cfg[annotator]
    entry["prompt_template"] = str((src.parent.parent / entry["prompt_template"]).resolve())
    entry["completions_kwargs"].update(model_name=model, client_config_path=str(clients))
    out = workdir / annotator / "configs.yaml"
    out.parent.mkdir(parents=True)
    out.write_text(yaml.safe_dump(cfg))
    return out


def score_alpaca_eval_official(*, prompts_path, candidate_path, reference_path, reference_name, judge_cfg, out_json,
                               out_judgments, cache_path=None, lc_glm="offline", annotator="weighted_alpaca_eval_gpt4_turbo",
                               ci_level=0.95, seed=0, model_id="") -> dict:
    from alpaca_eval.annotators import PairwiseAnnotator

    from .alpaca_eval_metrics import length_controlled, to_annotations

    http = _http(judge_cfg)
    prompts, cand, ref, ids = load_answers(prompts_path, candidate_path, reference_path)
    instr = {i: prompts[i]["messages"][-1]["content"] for i in ids}
    with tempfile.TemporaryDirectory(prefix="gamealign-alpaca-eval-") as tmp:
        config = _alpaca_eval_config(annotator, http, Path(tmp))
        pool = PairwiseAnnotator(annotators_config=str(config), caching_path=None, is_avoid_reannotations=False,
                                 seed=seed)
        annotated = pool.annotate_head2head(
            outputs_1=[{"instruction": instr[i], "output": ref[i]["text"], "generator": reference_name} for i in ids],
            outputs_2=[{"instruction": instr[i], "output": cand[i]["text"], "generator": model_id or "model"}
                       for i in ids], is_ordered=True)
    pref = [a.get("preference") for a in annotated]
    missing = [i for i, p in zip(ids, pref) if p is None or p != p]
    if missing or len(pref) != len(ids):
        raise JudgeServiceError(f"alpaca_eval {annotator}: no annotation for {len(missing) or len(ids) - len(pref)} "
                                f"instruction(s), e.g. prompt {missing[0] if missing else '?'}; no score written")
    p = [float(x) - 1.0 for x in pref]     # alpaca_eval's preference: 1 = output_1 (reference), 2 = output_2 (model)
    rows = [{"prompt_id": i, "p_model_wins": pi, "raw_completion": a.get("preference_raw_completion")}
            for i, pi, a in zip(ids, p, annotated)]
    mean, lo, hi = bootstrap_mean_ci(p, ci_level, seed=seed)
    ann = to_annotations([instr[i] for i in ids], [cand[i]["text"] for i in ids], [ref[i]["text"] for i in ids], p,
                         model=model_id or "model", baseline=reference_name)
    lc = ({"length_controlled_winrate": 50.0, "lc_standard_error": 0.0, "lc_glm": "answers identical to the baseline's"}
          if is_the_baseline(cand, ref, ids) else length_controlled(ann, offline=(lc_glm == "offline")))
    result = {"benchmark": "alpaca_eval", "protocol": "official", "annotator_config": annotator,
              "endpoint": http["base_url"], "versions": _versions(), "model_id": model_id, "win_rate": mean,
              "ci_low": lo, "ci_high": hi, "ci_level": ci_level,
              "ci_method": "percentile bootstrap over instructions (2000 resamples)",
              "lc_win_rate": lc["length_controlled_winrate"] / 100.0,
              "lc_standard_error": lc.get("lc_standard_error", 0.0) / 100.0, "lc_glm": lc["lc_glm"],
              "n_prompts": len(ids), "judge": {"protocol": "alpaca_eval", "annotator": annotator,
                                               "model": http.get("model")},
              "judge_calls": len(ids), "baseline": reference_name, "data": str(prompts_path),
              "mean_response_tokens": sum(cand[i].get("n_tokens") or 0 for i in ids) / len(ids),
              "truncation_rate": truncation_rate([cand[i] for i in ids]), "judgments_file": str(out_judgments)}
    write_jsonl(out_judgments, rows)
    write_json(out_json, result)
    return result


# --- Arena-Hard ---------------------------------------------------------------------------------------------
def _verdict(text: str) -> str | None:
    """arena-hard-auto's reading of a judgment: the label when every `[[...]]` in it agrees, else none."""
    labels = {m.strip("\n") for m in VERDICT.findall(text or "") if m}
    return labels.pop() if len(labels) == 1 and next(iter(labels)) in VERDICTS else None


def _judge_game(client, question: str, answer_a: str, answer_b: str, where: str) -> tuple[str, str]:
    """(verdict, judgment) of one game; asked once more to finish with a label when the first judgment has none."""
    messages = [{"role": "system", "content": ARENA_HARD_SYSTEM},
                {"role": "user", "content": ARENA_HARD_TEMPLATE.format(question_1=question, answer_1=answer_a,
                                                                        answer_2=answer_b)}]
    judgment = ""
    for _ in range(2):
        reply = client.chat(messages, max_tokens=4096)
        judgment += reply
        verdict = _verdict(judgment)
        if verdict:
            return verdict, judgment
        messages += [{"role": "assistant", "content": reply},
                     {"role": "user", "content": "continue your judgment and finish by outputting a final verdict "
                                                 "label"}]
    raise JudgeServiceError(f"arena-hard judge: no verdict label for {where} after 2 attempts; no score written")


def score_arena_hard_official(*, prompts_path, candidate_path, reference_path, reference_name, judge_cfg, out_json,
                              out_judgments, cache_path=None, n_boot=100, ci_level=0.95, seed=0, model_id="",
                              bootstrap="question") -> dict:
    from ..judges.http_judge import HTTPJudge

    http = _http(judge_cfg)
    client = HTTPJudge(**{**http, "temperature": 0.0, "concurrency": 1})   # arena-hard-auto: temperature 0
    prompts, cand, ref, ids = load_answers(prompts_path, candidate_path, reference_path)
    model, base = model_id or "model", f"baseline:{reference_name}"
    rows, battles, questions = [], [], []
    for i in ids:
        q = "\n\n".join(m["content"] for m in prompts[i]["messages"] if m["role"] == "user")
        g1, j1 = _judge_game(client, q, ref[i]["text"], cand[i]["text"], f"prompt {i}, game 1")   # baseline = A
        g2, j2 = _judge_game(client, q, cand[i]["text"], ref[i]["text"], f"prompt {i}, game 2")   # model = A
        rows.append({"prompt_id": i, "verdict_baseline_first": g1, "verdict_model_first": g2,
                     "judgment_baseline_first": j1, "judgment_model_first": j2})
        p1, w1 = VERDICTS[g1]
        p2, w2 = VERDICTS[g2]
        battles += [(base, model, p1)] * w1 + [(model, base, p2)] * w2
        questions += [i] * (w1 + w2)
    if is_the_baseline(cand, ref, ids):
        scored = {"score": 0.5, "ci_low": 0.5, "ci_high": 0.5, "n_battles": len(battles), "n_boot": 0,
                  "bootstrap_unit": bootstrap}
    else:
        scored = AH.score(battles, model, base, n_boot=n_boot, level=ci_level, seed=seed, questions=questions,
                          unit=bootstrap)
    result = {"benchmark": "arena_hard", "protocol": "official", "annotator_config": ARENA_HARD_CONFIG,
              "endpoint": http["base_url"], "versions": _versions(), "model_id": model_id,
              "win_rate": scored["score"], "ci_low": scored["ci_low"], "ci_high": scored["ci_high"],
              "ci_level": ci_level,
              "ci_method": f"Bradley-Terry fit, percentile bootstrap over {scored['bootstrap_unit']}s "
                           f"({scored['n_boot']} rounds); verdicts weighted as arena-hard-auto (>> counts 3)",
              "n_prompts": len(ids), "n_battles": scored["n_battles"],
              "judge": {"protocol": "arena_hard", "model": http.get("model"), "config": ARENA_HARD_CONFIG},
              "judge_calls": client.requests, "baseline": reference_name, "data": str(prompts_path),
              "mean_response_tokens": sum(cand[i].get("n_tokens") or 0 for i in ids) / len(ids),
              "truncation_rate": truncation_rate([cand[i] for i in ids]), "judgments_file": str(out_judgments)}
    write_jsonl(out_judgments, rows)
    write_json(out_json, result)
    return result


def official_per_prompt(row: dict) -> float:
    """The model's win probability on one prompt from an official Arena-Hard judgments row (both games)."""
    p1, _ = VERDICTS[row["verdict_baseline_first"]]
    p2, _ = VERDICTS[row["verdict_model_first"]]
    return 0.5 * ((1.0 - p1) + p2)

