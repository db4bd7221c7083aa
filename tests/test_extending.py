"""The README's "Extending" worked examples, run: a new judge is one module plus its registry entry; a new
algorithm is one module with `@register`, and the preference-game track runs it at once."""

import sys
import textwrap

import numpy as np

from gamealign.judges import annotate_groups, make_judge, register_judge
from gamealign.judges.base import JUDGES

JUDGE_MODULE = '''
from gamealign.judges.base import Judge


class LengthJudge(Judge):
    """Prefers the longer answer: P(a > b) = len(a) / (len(a) + len(b))."""
    name = "length"

    @classmethod
    def from_config(cls, cfg):
        return cls()

    def judge(self, prompt, responses, pairs):
        return [len(responses[i]) / (len(responses[i]) + len(responses[j])) for i, j in pairs]
'''

ALGORITHM_MODULE = '''
from gamealign.algorithms.base import Algorithm, Example, batch_mean, best_worst, register


def sq_loss(logp_w, logp_l, prev_w, prev_l, c: float):
    """(Δ_θ − Δ_t − c)²: a squared-margin loss against the previous iterate (a toy)."""
    return ((logp_w - logp_l) - (prev_w - prev_l) - c) ** 2


@register
class SquaredMargin(Algorithm):
    name = "squared_margin"
    online = True
    frozen = ("prev",)

    def build_examples(self, groups, rng):
        out = []
        for g in groups:
            pair = best_worst(g)
            if pair:
                out.append(Example(g.prompt_id, [g.responses[pair[0]], g.responses[pair[1]]]))
        return out

    def loss(self, batch):
        lp, prev = batch["logp"], batch["prev"]
        per = sq_loss(lp[:, 0], lp[:, 1], prev[:, 0], prev[:, 1], self.hparams["c"])
        return batch_mean(per, batch), {}
'''


def _module(tmp_path, monkeypatch, name, source):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)


def test_a_new_judge_is_one_module_and_its_registry_entry(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "my_judges", JUDGE_MODULE)
    import gamealign.judges.base as judges_base
    monkeypatch.setattr(judges_base, "JUDGES", dict(JUDGES))   # the registration is undone after the test
    register_judge("length", "my_judges:LengthJudge")
    judge = make_judge({"name": "length"})
    prompt = {"id": "p", "messages": [{"role": "user", "content": "Say something."}]}
    rows, stats = annotate_groups(judge, {"p": prompt}, {"p": ["a", "bbb", "a"]})
    p = {(r["i"], r["j"]): r["p"] for r in rows}
    assert p[(0, 1)] == 0.25 and p[(0, 2)] == 0.5 and stats["judge_calls"] == 2 and stats["identical_pairs"] == 1


def test_a_new_algorithm_is_one_module_and_the_game_track_runs_it(tmp_path, monkeypatch):
    from gamealign import games as G
    from gamealign.algorithms.base import REGISTRY

    _module(tmp_path, monkeypatch, "my_algorithms", ALGORITHM_MODULE)
    import gamealign.algorithms.base as base
    monkeypatch.setattr(base, "REGISTRY", dict(REGISTRY))   # the registration is undone after the test
    __import__("my_algorithms")
    assert "squared_margin" in base.REGISTRY
    game = G.make_game("bt", contexts=2, n=4, seed=0)
    rows = G.run("squared_margin", {"c": 1.0}, game, iterations=5, k=4, groups_per_context=32, seed=0, tau=0.1)
    assert rows[-1]["judge_calls_cum"] > 0 and np.isfinite(rows[-1]["gap"])
    assert rows[-1]["win_vs_ref"] > 0.5   # it learns to beat π_ref on a transitive game


BENCHMARK_MODULE = '''
from gamealign.evaluation.scoring import cached_judge, load_answers
from gamealign.evaluation.stats import bootstrap_mean_ci
from gamealign.io import write_json, write_jsonl


def score_terse(*, prompts_path, candidate_path, reference_path, reference_name, judge_cfg, out_json, out_judgments,
                cache_path=None, ci_level=0.95, seed=0, model_id="", max_words=5):
    """The judge's win rate on the prompts whose reference answer is short (at most `max_words` words)."""
    prompts, cand, ref, ids = load_answers(prompts_path, candidate_path, reference_path)
    ids = [i for i in ids if len(ref[i]["text"].split()) <= max_words]
    judge = cached_judge(judge_cfg, cache_path)
    rows = [{"prompt_id": i, "p": judge(prompts[i], cand[i]["text"], ref[i]["text"])} for i in ids]
    mean, lo, hi = bootstrap_mean_ci([r["p"] for r in rows], ci_level, seed=seed)
    result = {"benchmark": "terse", "model_id": model_id, "win_rate": mean, "ci_low": lo, "ci_high": hi,
              "n_prompts": len(ids), "judge": judge.identity, "judge_calls": judge.calls, "baseline": reference_name,
              "data": str(prompts_path), "mean_response_tokens": 0.0, "judgments_file": str(out_judgments)}
    write_jsonl(out_judgments, rows)
    write_json(out_json, result)
    return result
'''


def test_a_new_benchmark_is_one_module_and_its_registry_entry(tmp_path, monkeypatch):
    import json

    import gamealign.evaluation.registry as registry
    from gamealign.cli import main
    from gamealign.io import write_jsonl
    from gamealign.report import collect, per_prompt_wins

    _module(tmp_path, monkeypatch, "my_benchmarks", BENCHMARK_MODULE)
    terse = registry.Benchmark(
        "terse", "judged", "Terse prompts", "terse.json", prompts="terse", per_prompt=lambda r: r["p"],
        scorer="my_benchmarks:score_terse", settings=lambda section: {"max_words": section["max_words"]})
    monkeypatch.setitem(registry.BENCHMARKS, "terse", terse)    # what register_benchmark does, undone after the test
    prompts = [{"id": f"p{i}", "messages": [{"role": "user", "content": f"Question {i}?"}]} for i in range(3)]
    write_jsonl(tmp_path / "prompts.jsonl", prompts)
    write_jsonl(tmp_path / "ref.jsonl", [{"prompt_id": "p0", "text": "Yes."}, {"prompt_id": "p1", "text": "No."},
                                          {"prompt_id": "p2", "text": "A long answer of many many words."}])
    write_jsonl(tmp_path / "cand.jsonl", [{"prompt_id": f"p{i}", "text": "Yes."} for i in range(3)])
    out = tmp_path / "terse.json"
    rc = main(["score", "--bench", "terse", "--prompts", str(tmp_path / "prompts.jsonl"),
               "--candidate", str(tmp_path / "cand.jsonl"), "--reference", str(tmp_path / "ref.jsonl"),
               "--reference-name", "ref", "--judge", json.dumps({"name": "panel", "criteria": ["complete"]}),
               "--params", json.dumps({"ci_level": 0.95, "terse": {"max_words": 5}}), "--out", str(out),
               "--judgments", str(tmp_path / "terse_judgments.jsonl"), "--model-id", "m"])
    assert rc == 0 and json.loads(out.read_text())["n_prompts"] == 2
    assert per_prompt_wins(out, "terse") == {"p0": 0.5, "p1": 0.5}   # p0 identical; p1 both finished sentences
    df = collect([{"seed": None, "algorithm": "m", "round": 1, "manifest": None}],
                 [{"seed": None, "algorithm": "m", "round": 1, "benchmark": "terse", "path": str(out)}])
    assert df.win_rate.tolist() == [0.5]
