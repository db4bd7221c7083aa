import numpy as np

from gamealign.judges import Judge, JudgeCache, annotate_groups
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
    mat = judge.judge(PROMPT, [good, bad, ""])
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
    name = "counting"

    def __init__(self):
        self.calls = 0

    def compare(self, prompt, a, b):
        self.calls += 1
        return 0.75


def test_cache_never_judges_a_pair_twice(tmp_path):
    judge, cache = CountingJudge(), JudgeCache(tmp_path / "cache.sqlite")
    groups = {"p": ["x", "y", "z"]}
    rows, stats = annotate_groups(judge, {"p": PROMPT}, groups, cache)
    assert judge.calls == 3 and stats["judge_calls"] == 3 and len(rows) == 3
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
