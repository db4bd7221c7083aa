import random

import numpy as np
import pytest

from gamealign.judges import Judge, JudgeCache, annotate_groups
from gamealign.judges.base import PairwiseJudge
from gamealign.judges.panel import PanelJudge

PROMPT = {"id": "p", "messages": [{"role": "user", "content": "Explain composting. Answer in at most 10 words."}],
          "meta": {"topic": "composting", "constraints": [{"type": "max_words", "n": 10}]}}


def test_panel_is_antisymmetric_and_prefers_the_better_answer():
    judge = PanelJudge()
    good = "Composting turns food scraps into rich soil."
    bad = "the the the the the the the the the the the the the the"
    p = judge.compare(PROMPT, good, bad)
    assert p > 0.5
    assert np.isclose(judge.compare(PROMPT, bad, good), 1 - p)
    mat = judge.matrix(PROMPT, [good, bad, ""])
    assert np.allclose(mat + mat.T, 1.0)


def test_panel_majority_can_be_intransitive():
    """Three criteria, three responses, a Condorcet cycle: a ≻ b ≻ c ≻ a (not Bradley-Terry)."""
    judge = PanelJudge(["concise", "relevance", "no_repetition"])
    prompt = {"id": "q", "messages": [{"role": "user", "content": "Urban gardening tips?"}],
              "meta": {"topic": "urban gardening tips"}}
    a = "we like it we like it so"
    b = "urban gardening tips urban gardening tips urban gardening tips urban gardening tips"
    c = ("urban gardening brings fresh food to busy neighbours and teaches children where their "
         "dinner really comes from each season")
    assert judge.compare(prompt, a, b) > 0.5
    assert judge.compare(prompt, b, c) > 0.5
    assert judge.compare(prompt, c, a) > 0.5


class CountingJudge(Judge):
    """Batch-first: counts the pairs it is asked and the batches they came in."""
    name = "counting"

    def __init__(self):
        self.calls = self.batches = 0

    def judge(self, prompt, responses, pairs):
        self.calls += len(pairs)
        self.batches += 1
        return [0.75] * len(pairs)


def test_cache_never_judges_a_pair_twice(tmp_path):
    judge, cache = CountingJudge(), JudgeCache(tmp_path / "cache.sqlite")
    groups = {"p": ["x", "y", "z"]}
    rows, stats = annotate_groups(judge, {"p": PROMPT}, groups, cache)
    assert judge.calls == 3 and stats["judge_calls"] == 3 and len(rows) == 3
    assert judge.batches == 1   # batch-first: a non-adaptive plan's pairs go to the judge in one call
    # a second run (new process would open the same sqlite file) hits the cache only
    rows2, stats2 = annotate_groups(judge, {"p": PROMPT}, groups, JudgeCache(tmp_path / "cache.sqlite"))
    assert judge.calls == 3 and stats2["cache_hits"] == 3 and rows2 == rows


def test_identical_responses_tie_without_a_call():
    judge = CountingJudge()
    rows, stats = annotate_groups(judge, {"p": PROMPT}, {"p": ["same", "same"]})
    assert rows[0]["p"] == 0.5 and judge.calls == 0 and stats["identical_pairs"] == 1


def test_truncated_modes_keep_drop_lose():
    """Responses b and d were cut at max_new_tokens. keep: all 6 pairs judged; drop: only (a, c), nothing
    about b or d written; lose: a finished response beats a cut one without a call, (b, d) is judged."""
    groups, cut = {"p": ["a", "b", "c", "d"]}, {"p": [False, True, False, True]}
    judge = CountingJudge()
    rows, stats = annotate_groups(judge, {"p": PROMPT}, groups, truncated=cut, mode="keep")
    assert judge.calls == 6 and len(rows) == 6 and stats["truncated_mode"] == "keep"
    judge = CountingJudge()
    rows, stats = annotate_groups(judge, {"p": PROMPT}, groups, truncated=cut, mode="drop")
    assert judge.calls == 1 and [(r["i"], r["j"]) for r in rows] == [(0, 2)] and stats["truncated_dropped_pairs"] == 5
    judge = CountingJudge()
    rows, stats = annotate_groups(judge, {"p": PROMPT}, groups, truncated=cut, mode="lose")
    p = {(r["i"], r["j"]): r["p"] for r in rows}
    assert judge.calls == 2 and stats["truncated_rule_pairs"] == 4            # (a, c) and (b, d) judged
    assert p[(0, 1)] == 1.0 and p[(1, 2)] == 0.0 and p[(0, 3)] == 1.0 and p[(2, 3)] == 1.0
    assert p[(0, 2)] == p[(1, 3)] == 0.75


class MatrixJudge(PairwiseJudge):
    """P(y_a ≻ y_b) read from a fixed matrix by the texts' indices ("y3" is response 3); counts its calls."""
    name = "matrix"

    def __init__(self, P):
        self.P, self.asked = P, []

    def compare(self, prompt, a, b):
        i, j = int(a[1:]), int(b[1:])
        self.asked.append((min(i, j), max(i, j)))
        return float(self.P[i, j])


def _preference_matrix(k, seed, ties=0):
    rng = np.random.default_rng(seed)
    P = np.triu(rng.uniform(size=(k, k)), 1)
    for i, j in list(zip(*np.triu_indices(k, 1)))[:ties]:     # exact ties: the tournament flips a coin
        P[i, j] = 0.5
    P = P + np.tril(1 - P.T, -1)
    np.fill_diagonal(P, 0.5)
    return P


def _write_round(tmp_path, groups, rows):
    import pandas as pd

    from gamealign.io import write_jsonl

    write_jsonl(tmp_path / "s.jsonl", [{"prompt_id": pid, "k": k, "text": t, "finish_reason": "stop"}
                                       for pid, texts in groups.items() for k, t in enumerate(texts)])
    pd.DataFrame(rows, columns=["prompt_id", "i", "j", "p"]).to_parquet(tmp_path / "p.parquet", index=False)


@pytest.mark.parametrize("k", [4, 5, 8])
def test_annotation_judges_only_the_plan_and_the_trainer_reads_exactly_those_pairs(tmp_path, k):
    """WIND's plan judges ⌊K/2⌋ disjoint pairs, INPO's plays its tournament bracket by bracket (odd K, exact
    ties); the trainer, loading the written file with the same plan seed, reads exactly the judged pairs; an
    algorithm needing every pair refuses that file naming the unjudged pair."""
    from gamealign.algorithms import get_algorithm
    from gamealign.io import DataError
    from gamealign.training import load_groups

    texts = [f"y{i}" for i in range(k)]
    prompts = {f"q{n}": {"id": f"q{n}", "messages": [{"role": "user", "content": f"Question {n}?"}]} for n in range(6)}
    for algo, plan, hp, expect in [("wind", "disjoint", {"eta": 1.0, "beta": 0.1}, {k // 2}),
                                   ("inpo", "tournament", {}, {k + k // 2 - 2, k + k // 2 - 1})]:
        for seed in range(3):
            judge = MatrixJudge(_preference_matrix(k, seed, ties=2))
            rows, stats = annotate_groups(judge, prompts, {pid: texts for pid in prompts},
                                          plans=[{"plan": plan, "seed": 100 + seed}])
            judged = {(r["prompt_id"], r["i"], r["j"]) for r in rows}
            per_prompt = {pid: sum(r["prompt_id"] == pid for r in rows) for pid in prompts}
            assert set(per_prompt.values()) <= expect and stats["judge_calls"] == len(judge.asked) == len(rows)
            _write_round(tmp_path, {pid: texts for pid in prompts}, rows)
            groups = load_groups(tmp_path / "s.jsonl", tmp_path / "p.parquet", plan_seed=100 + seed)
            get_algorithm(algo, hp).build_examples(groups, random.Random(seed))
            assert {(g.prompt_id, i, j) for g in groups for i, j in g.read} == judged, (algo, seed)
            with pytest.raises(DataError, match="were not judged"):
                get_algorithm("dpo", {}).build_examples(load_groups(tmp_path / "s.jsonl", tmp_path / "p.parquet"),
                                                         random.Random(0))
    # a trainer with another plan seed would read pairs nobody judged: it stops instead of reading a default
    groups = load_groups(tmp_path / "s.jsonl", tmp_path / "p.parquet", plan_seed=7)
    with pytest.raises(DataError, match="were not judged"):
        for _ in range(20):                      # (a different bracket could, by chance, meet only judged pairs)
            get_algorithm("inpo", {}).build_examples(groups, random.Random(0))
            groups = load_groups(tmp_path / "s.jsonl", tmp_path / "p.parquet", plan_seed=groups[0].plan_seed + 1)


def test_the_union_of_plans_is_judged_once_and_all_pairs_contain_the_rest():
    """Round 1 is shared: its annotation runs every algorithm's plan and judges the union of their pairs, each
    pair once; with any all-pairs algorithm in the study it judges all K(K−1)/2."""
    k, texts = 6, [f"y{i}" for i in range(6)]
    P = _preference_matrix(k, 0)
    plans = [{"plan": "disjoint", "seed": 1}, {"plan": "tournament", "seed": 2}]
    alone = [{(r["i"], r["j"]) for r in annotate_groups(MatrixJudge(P), {"p": PROMPT}, {"p": texts}, plans=[p])[0]}
             for p in plans]
    judge = MatrixJudge(P)
    rows, stats = annotate_groups(judge, {"p": PROMPT}, {"p": texts}, plans=plans)
    assert {(r["i"], r["j"]) for r in rows} == alone[0] | alone[1]
    assert sorted(judge.asked) == sorted(alone[0] | alone[1])          # no pair asked twice
    rows, stats = annotate_groups(MatrixJudge(P), {"p": PROMPT}, {"p": texts}, plans=plans + [{"plan": "all"}])
    assert len(rows) == k * (k - 1) // 2 and stats["plans"] == [{"plan": "all", "seed": 0}]
    with pytest.raises(ValueError, match="plan must be one of"):
        annotate_groups(MatrixJudge(P), {"p": PROMPT}, {"p": texts}, plans=[{"plan": "pairs"}])


def test_plans_under_drop_see_only_finished_responses_and_lose_decides_without_the_judge(tmp_path):
    """drop: the plan pairs only the finished responses, and the trainer (dropping the same ones) reads exactly
    the judged pairs; lose: a cut-vs-finished pair read by the plan is decided by rule and not charged."""
    from gamealign.algorithms import Group, get_algorithm
    from gamealign.training import load_groups

    texts, cut = [f"y{i}" for i in range(6)], [False, True, False, False, True, False]
    P = _preference_matrix(6, 3)
    judge = MatrixJudge(P)
    rows, _ = annotate_groups(judge, {"p": PROMPT}, {"p": texts}, truncated={"p": cut}, mode="drop",
                              plans=[{"plan": "disjoint", "seed": 5}])
    assert len(rows) == 2 and not {1, 4} & ({r["i"] for r in rows} | {r["j"] for r in rows})
    import pandas as pd

    from gamealign.io import write_jsonl

    write_jsonl(tmp_path / "s.jsonl", [{"prompt_id": "p", "k": n, "text": t, "finish_reason": "length" if c else "stop"}
                                       for n, (t, c) in enumerate(zip(texts, cut))])
    pd.DataFrame(rows).to_parquet(tmp_path / "p.parquet", index=False)
    groups = load_groups(tmp_path / "s.jsonl", tmp_path / "p.parquet", drop_truncated=True, plan_seed=5)
    examples = get_algorithm("wind", {"eta": 1.0, "beta": 0.1}).build_examples(groups, random.Random(0))
    assert len(examples) == 2 and groups[0].comparisons_read() == 2
    judge = MatrixJudge(P)
    rows, stats = annotate_groups(judge, {"p": PROMPT}, {"p": texts}, truncated={"p": cut}, mode="lose",
                                  plans=[{"plan": "disjoint", "seed": 5}])
    g = Group("p", texts, P, finished=[not c for c in cut], plan_seed=5)
    get_algorithm("wind", {"eta": 1.0, "beta": 0.1}).build_examples([g], random.Random(0))
    assert g.comparisons_read(rule_decided=True) == len(judge.asked) == stats["judge_calls"]
    assert g.comparisons_read() - g.comparisons_read(rule_decided=True) == stats["truncated_rule_pairs"]


def test_the_cache_key_covers_everything_that_determines_an_answer():
    """The panel reads a prompt's meta (constraints, topic): the same text with other constraints is another
    question. The HTTP judge's endpoint is part of its identity."""
    from gamealign.judges import JudgeCache
    from gamealign.judges.http_judge import HTTPJudge
    msgs = [{"role": "user", "content": "Say hi."}]
    p1 = {"id": "x", "messages": msgs, "meta": {"constraints": [{"type": "lowercase"}]}}
    p2 = {"id": "x", "messages": msgs, "meta": {"constraints": [{"type": "title"}]}}
    ident = {"name": "panel", "criteria": ["constraints"], "version": 1}
    assert JudgeCache.key(ident, p1, "a", "b") != JudgeCache.key(ident, p2, "a", "b")
    assert JudgeCache.key(ident, p1, "a", "b") == JudgeCache.key(ident, dict(p1), "a", "b")
    one, two = HTTPJudge(base_url="http://a:1/v1"), HTTPJudge(base_url="http://b:2/v1")
    assert one.identity() != two.identity()
    assert HTTPJudge(base_url="http://a:1/v1", timeout_s=5).identity() == one.identity()
