"""IFEval-style instruction following: each constraint checker met / not met by hand, and the benchmark's
prompt- and instruction-level accuracies with their CIs on a hand-built set."""

import json

import pytest

from gamealign.evaluation.ifeval import check, score_ifeval
from gamealign.io import DataError, write_jsonl

CASES = [  # (constraint, a response that meets it, one that does not)
    ({"type": "max_words", "n": 5}, "Tea is a warm drink.", "Tea is a warm drink that many enjoy."),
    ({"type": "min_words", "n": 6}, "Rivers carry water down to the sea.", "Rivers carry water."),
    ({"type": "max_sentences", "n": 1}, "One sentence only.", "First sentence. Second sentence."),
    ({"type": "bullets", "n": 2}, "- one\n- two", "- one\n- two\n- three"),
    ({"type": "include", "word": "river"}, "The river is wide.", "The stream is wide."),
    ({"type": "exclude", "word": "river"}, "The stream is wide.", "The River is wide."),
    ({"type": "include", "word": "river"}, "The word 'river' is here.", "The word 'stream' is here."),
    ({"type": "exclude", "word": "river"}, "Don't use 'rivers'.", "Don't say 'river'."),
    ({"type": "json"}, '{"answer": "yes"}', 'answer: yes'),
    ({"type": "title"}, "<<Maps>>\nMaps show places.", "Maps show places."),
    ({"type": "lowercase"}, "all lowercase here.", "Not all lowercase."),
    ({"type": "end_with", "phrase": "Is there anything else?"}, "Done. Is there anything else?", "Done."),
]


@pytest.mark.parametrize("constraint,good,bad", CASES, ids=[c["type"] for c, _, _ in CASES])
def test_each_constraint_type_is_met_or_not(constraint, good, bad):
    prompt = {"id": "p", "messages": [], "meta": {"constraints": [constraint]}}
    assert check(prompt, good) == [{**constraint, "met": True}]
    assert check(prompt, bad) == [{**constraint, "met": False}]


def test_prompt_and_instruction_level_accuracy_by_hand(tmp_path):
    """Prompts with 2, 1 and 2 constraints; met 2/2, 0/1, 1/2 → prompt level 1/3, instruction level 3/5; a prompt
    without constraints is skipped. One seed's CIs are a bootstrap over prompts, inside [0, 1] around them."""
    cons = {"a": [{"type": "include", "word": "tea"}, {"type": "max_words", "n": 5}],
            "b": [{"type": "lowercase"}],
            "c": [{"type": "exclude", "word": "tea"}, {"type": "min_words", "n": 3}],
            "d": []}
    prompts = [{"id": k, "messages": [{"role": "user", "content": "x"}], "meta": {"constraints": v}} for k, v in cons.items()]
    answers = {"a": "I like tea.", "b": "Not lowercase.", "c": "tea tea tea", "d": "anything"}
    write_jsonl(tmp_path / "p.jsonl", prompts)
    write_jsonl(tmp_path / "g.jsonl", [{"prompt_id": k, "text": v, "n_tokens": 3, "finish_reason": "stop"}
                                       for k, v in answers.items()])
    res = score_ifeval(prompts_path=tmp_path / "p.jsonl", generations_path=tmp_path / "g.jsonl",
                       out_json=tmp_path / "s.json", out_items=tmp_path / "i.jsonl", model_id="m")
    assert res["n_prompts"] == 3 and res["n_instructions"] == 5
    assert res["prompt_level"] == pytest.approx(1 / 3) and res["instruction_level"] == pytest.approx(3 / 5)
    assert 0 <= res["prompt_level_ci_low"] <= 1 / 3 <= res["prompt_level_ci_high"] <= 1
    assert 0 <= res["instruction_level_ci_low"] <= 0.6 <= res["instruction_level_ci_high"] <= 1
    assert res["per_type"]["min_words"] == {"asked": 1, "met": 1} and res["per_type"]["exclude"] == {"asked": 1, "met": 0}
    items = [json.loads(x) for x in (tmp_path / "i.jsonl").read_text().splitlines()]
    assert [(it["prompt_id"], it["all_met"]) for it in items] == [("a", True), ("b", False), ("c", False)]
    write_jsonl(tmp_path / "none.jsonl", [prompts[-1]])
    with pytest.raises(DataError, match="no prompt has verifiable constraints"):
        score_ifeval(prompts_path=tmp_path / "none.jsonl", generations_path=tmp_path / "g.jsonl",
                     out_json=tmp_path / "s2.json", out_items=tmp_path / "i2.jsonl")


def test_report_gives_each_model_its_paired_difference_from_sft_by_hand(tmp_path, monkeypatch):
    """The report's `pl_delta` / `il_delta`: trained minus SFT on the same prompts. SFT meets 1/3 prompts and 3/5
    constraints (the case above); the model also meets c's exclude (c's min_words SFT met already): prompt level
    2/3, instruction level 4/5, so +1/3 and +1/5. Its paired CI is over the per-prompt differences (0, 0, +1 here for
    prompt level), so it lies in [0, 1]; a model answering exactly as SFT has a difference and CI of 0."""
    from gamealign.report import collect_ifeval

    monkeypatch.chdir(tmp_path)      # the score files name their items files relative to the study folder
    cons = {"a": [{"type": "include", "word": "tea"}, {"type": "max_words", "n": 5}],
            "b": [{"type": "lowercase"}],
            "c": [{"type": "exclude", "word": "tea"}, {"type": "min_words", "n": 3}]}
    write_jsonl("p.jsonl", [{"id": k, "messages": [{"role": "user", "content": "x"}], "meta": {"constraints": v}}
                            for k, v in cons.items()])
    answers = {"sft": {"a": "I like tea.", "b": "Not lowercase.", "c": "tea tea tea"},
               "m": {"a": "I like tea.", "b": "Not lowercase.", "c": "coffee is fine"},
               "same": {"a": "I like tea.", "b": "Not lowercase.", "c": "tea tea tea"}}
    for name, ans in answers.items():
        write_jsonl(f"{name}.jsonl", [{"prompt_id": k, "text": v, "n_tokens": 3, "finish_reason": "stop"}
                                      for k, v in ans.items()])
        score_ifeval(prompts_path="p.jsonl", generations_path=f"{name}.jsonl", out_json=f"{name}_s.json",
                     out_items=f"{name}_i.jsonl", model_id=name)
    table = collect_ifeval([{"algorithm": a, "round": r, "path": f"{n}_s.json"}
                            for a, r, n in [("sft", 0, "sft"), ("x", 1, "m"), ("y", 1, "same")]], 0.95)
    x, y = table[table.algorithm == "x"].iloc[0], table[table.algorithm == "y"].iloc[0]
    assert x.pl_delta == pytest.approx(1 / 3) and x.il_delta == pytest.approx(1 / 5)
    assert 0 <= x.pl_delta_ci_low <= 1 / 3 <= x.pl_delta_ci_high <= 1
    assert (y.pl_delta, y.pl_delta_ci_low, y.pl_delta_ci_high, y.il_delta) == (0, 0, 0, 0)
    assert table[table.algorithm == "sft"].pl_delta.isna().all()
