"""`evaluation.ifeval.source: lm_eval`: our constraints written as IFEval instructions, checked by lm-evaluation-harness's
own ifeval task (Google's checkers), on hand cases and through lm-eval's pipeline on the tiny model."""

import json

import pytest

from gamealign.evaluation.ifeval import IFEVAL_INSTRUCTIONS, check, run_lm_eval_ifeval, to_ifeval
from gamealign.io import DataError, read_jsonl, write_jsonl

from test_ifeval import CASES

# where Google's checkers read one of our constraints differently (gamealign.evaluation.ifeval's table):
# (constraint, response, ours, IFEval's)
DIFFERENCES = [
    ({"type": "include", "word": "cat"}, "Two cats sleep.", False, True),            # a substring is enough there
    ({"type": "max_words", "n": 2}, "Don't go.", True, False),                        # "don't" is two \w+ runs there
    ({"type": "json"}, "[1, 2]", False, True),                                        # any JSON value there
    ({"type": "title"}, "Maps show places. <<Maps>>", False, True),                   # a title anywhere there
    ({"type": "end_with", "phrase": "The end."}, "Done. the end.", False, True),      # case-insensitive there
    ({"type": "max_sentences", "n": 1}, "Dr. Smith came home.", False, True),         # Punkt knows "Dr."
]


def google_checks(constraint: dict, response: str) -> bool:
    from lm_eval.tasks.ifeval.utils import InputExample, test_instruction_following_strict
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0
    iid, kw = IFEVAL_INSTRUCTIONS[constraint["type"]](constraint)
    out = test_instruction_following_strict(InputExample(0, [iid], "a prompt", [kw]), response)
    return out.follow_instruction_list[0]


@pytest.mark.parametrize("constraint,good,bad", CASES, ids=[c["type"] for c, _, _ in CASES])
def test_googles_checker_of_each_mapped_instruction_agrees_with_ours_on_the_hand_cases(constraint, good, bad):
    if constraint["type"] == "lowercase":   # langdetect needs more than three words to call it English
        good, bad = "tea is a warm drink that many people enjoy in the morning.", "Tea is a warm drink."
    prompt = {"meta": {"constraints": [constraint]}}
    assert check(prompt, good)[0]["met"] and google_checks(constraint, good)
    assert not check(prompt, bad)[0]["met"] and not google_checks(constraint, bad)


@pytest.mark.parametrize("constraint,response,ours,theirs", DIFFERENCES, ids=[c["type"] for c, *_ in DIFFERENCES])
def test_the_stated_differences_between_the_two_checkers_are_real(constraint, response, ours, theirs):
    assert check({"meta": {"constraints": [constraint]}}, response)[0]["met"] is ours
    assert google_checks(constraint, response) is theirs


def _prompts(n=3):
    from test_ifeval import CASES as cases

    return [{"id": f"p{i}", "messages": [{"role": "user", "content": f"Say something. {i}"}],
             "meta": {"constraints": [cases[i][0], cases[(i + 4) % len(cases)][0]]}} for i in range(n)]


def test_held_out_prompts_become_ifeval_rows_and_odd_prompts_are_refused():
    rows = to_ifeval(_prompts(3) + [{"id": "free", "messages": [{"role": "user", "content": "hi"}], "meta": {}}])
    assert [r["prompt_id"] for r in rows] == ["p0", "p1", "p2"] and [r["key"] for r in rows] == [0, 1, 2]
    assert rows[0]["instruction_id_list"] == ["length_constraints:number_words", "keywords:existence"]
    assert rows[0]["kwargs"] == [{"relation": "less than", "num_words": 6}, {"keywords": ["river"]}]
    two = {"id": "x", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
           "meta": {"constraints": [{"type": "json"}]}}
    with pytest.raises(DataError, match="prompt x: IFEval rows are one user message"):
        to_ifeval([two])
    with pytest.raises(DataError, match="constraint type 'rhyme' has no IFEval instruction"):
        to_ifeval([{**two, "messages": two["messages"][1:], "meta": {"constraints": [{"type": "rhyme"}]}}])


def _run(tiny_sft, tmp_path, **params):
    prompts = tmp_path / "prompts.jsonl"
    write_jsonl(prompts, _prompts(3))
    out = {k: str(tmp_path / f"{k}.json{'l' if k == 'items' else ''}") for k in ("score", "items", "raw")}
    res = run_lm_eval_ifeval(model_path=tiny_sft, params={"source": "lm_eval", "data": "heldout", **params},
                             prompts_path=str(prompts), out_json=out["score"], out_items=out["items"],
                             out_raw=out["raw"], max_new_tokens=6, batch_size=3, model_id="sft")
    return res, read_jsonl(out["items"]), json.loads(open(out["score"]).read())


def test_lm_evals_pipeline_checks_known_answers_as_our_hand_cases_say(tiny_sft, tmp_path, monkeypatch):
    """lm-eval's ifeval task on our held-out rows, its generation replaced by known answers: each instruction is
    met exactly where the hand cases say, and our CIs' point estimates equal lm-eval's own aggregates."""
    from lm_eval.models.huggingface import HFLM

    seen = []

    def answers(self, requests, disable_tqdm=False):
        seen.extend(r.args[0] for r in requests)
        return [CASES[0][1], CASES[1][2], CASES[2][1]][:len(requests)]   # p0: words met; p1: min_words not met; p2

    monkeypatch.setattr(HFLM, "generate_until", answers)
    res, items, score = _run(tiny_sft, tmp_path)
    assert [it["prompt_id"] for it in items] == ["p0", "p1", "p2"]
    assert all("<|im_start|>user\nSay something." in a for a in seen)    # the chat template, as eval_generate
    expect = [[check({"meta": {"constraints": [c]}}, text)[0]["met"] for c in p["meta"]["constraints"]]
              for p, text in zip(_prompts(3), [CASES[0][1], CASES[1][2], CASES[2][1]])]
    assert [[c["met"] for c in it["constraints"]] for it in items] == expect
    assert res["prompt_level"] == pytest.approx(res["lm_eval_metrics"]["prompt_level_strict_acc"])
    assert res["instruction_level"] == pytest.approx(res["lm_eval_metrics"]["inst_level_strict_acc"])
    assert res["prompt_level_ci_low"] <= res["prompt_level"] <= res["prompt_level_ci_high"]
    assert score == json.loads(json.dumps(res)) and res["source"] == "lm_eval" and res["max_gen_toks"] == 6


def test_a_real_generation_through_lm_eval_on_the_tiny_model(tiny_sft, tmp_path):
    res, items, _ = _run(tiny_sft, tmp_path, limit=2, max_gen_toks=4)
    assert [it["prompt_id"] for it in items] == ["p0", "p1"] and res["n_prompts"] == 2
    assert all(it["n_tokens"] <= 4 for it in items) and res["max_gen_toks"] == 4
    assert 0.0 <= res["truncation_rate"] <= 1.0 and "lm-evaluation-harness" in res["checkers"]


def test_an_ifeval_file_that_is_missing_is_named(tiny_sft, tmp_path):
    with pytest.raises(DataError, match="evaluation.ifeval.data: .*nope.jsonl is not a file"):
        _run(tiny_sft, tmp_path, data=str(tmp_path / "nope.jsonl"))


def test_the_study_rule_runs_lm_evals_ifeval_on_a_model_through_snakemake(repo, env, tmp_path):
    """`evaluation.ifeval.source: lm_eval` in a study: Snakemake's eval_ifeval job answers with the model itself
    (no eval_generate job needed), on the held-out prompts as IFEval rows, and writes the score, items and raw files."""
    import subprocess

    import yaml
    from conftest import snakemake_bin

    cfg = yaml.safe_load((repo / "configs/smoke.yaml").read_text())
    cfg["prompts"]["n_eval"] = 3
    cfg["evaluation"]["ifeval"] = {"source": "lm_eval", "max_gen_toks": 4}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    target = "results/eval/sft/ifeval.json"
    proc = subprocess.run([snakemake_bin(), "-s", str(repo / "Snakefile"), "-d", str(tmp_path / "w"), "--configfile",
                           str(path), "--cores", "1", target], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "eval_generate" not in proc.stdout + proc.stderr
    res = json.loads((tmp_path / "w" / target).read_text())
    prompts = read_jsonl(tmp_path / "w/results/prompts/eval_heldout.jsonl")
    items = read_jsonl(tmp_path / "w/results/eval/sft/ifeval_items.jsonl")
    assert res["source"] == "lm_eval" and res["max_gen_toks"] == 4 and res["n_prompts"] == len(prompts) == 3
    assert [it["prompt_id"] for it in items] == [p["id"] for p in prompts]
    assert [len(it["constraints"]) for it in items] == [len(p["meta"]["constraints"]) for p in prompts]
    assert (tmp_path / "w/results/eval/sft/ifeval_lmeval.json").is_file()


def test_punkt_data_is_written_only_when_every_file_matches_its_recorded_sum(tmp_path):
    """gamealign.nltk_data: the English punkt_tab files come out of the wheel only if each has its recorded sha256;
    a wheel with one altered or missing file writes nothing. (make install has put the real files in the venv.)"""
    import zipfile
    from pathlib import Path

    import nltk

    from gamealign import nltk_data

    assert nltk_data.installed(), "nltk's punkt_tab is not installed: run `python -m gamealign.nltk_data`"
    english = Path(nltk.data.find("tokenizers/punkt_tab/english/"))
    real = {name: (english.parent / name).read_bytes() for name in nltk_data.SHA256}

    def wheel(files: dict) -> Path:
        path = tmp_path / f"llama_index_core-{len(list(tmp_path.glob('*.whl')))}-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as zf:
            for name, blob in files.items():
                zf.writestr(nltk_data.PREFIX + name, blob)
        return path

    good = nltk_data.extract(wheel(real), tmp_path / "ok")
    assert nltk_data.installed(tmp_path / "ok") and good == tmp_path / "ok/tokenizers/punkt_tab/english"
    altered = {**real, "english/sent_starters.txt": real["english/sent_starters.txt"] + b"x\n"}
    with pytest.raises(ValueError, match="english/sent_starters.txt has sha256"):
        nltk_data.extract(wheel(altered), tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="no llama_index/core/.*english/collocations.tab"):
        nltk_data.extract(wheel({k: v for k, v in real.items() if "collocations" not in k}), tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not nltk_data.installed(tmp_path / "bad")
