"""The judge interface, the content-hash cache and the per-prompt annotation loop."""

from __future__ import annotations

import abc
import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm


class JudgeInputError(ValueError):
    """Input a judge refuses (an empty response under `on_empty: error`, a missing model, ...)."""


class JudgeServiceError(RuntimeError):
    """A remote judge that kept failing (timeouts, non-JSON or empty replies) after its retries."""


class Judge(abc.ABC):
    """Subclasses implement `judge(prompt, responses, pairs)`: P(y_i ≻ y_j) for a batch of pairs of one prompt's
    non-empty responses — batch-first, so a reward model scores the responses in one pass and a remote judge
    sends its requests concurrently.

    Callers use `preferences`, which applies the `on_empty` policy first: an empty (whitespace-only)
    response is never sent to the judge — with `lose` it loses to any non-empty response (P = 0) and
    ties another empty one (P = ½); with `error` it is refused with a JudgeInputError.
    """

    name = "judge"
    on_empty = "lose"

    @classmethod
    def from_config(cls, cfg: dict) -> "Judge":
        """The judge from the config's `judge` section (its own keys; `on_empty` is set by make_judge)."""
        return cls()

    def identity(self) -> dict:
        """What determines this judge's answers (cache key and provenance)."""
        return {"name": self.name}

    @abc.abstractmethod
    def judge(self, prompt: dict, responses: list[str], pairs: list[tuple[int, int]]) -> list[float]:
        """P(responses[i] ≻ responses[j]) for every (i, j) of `pairs` (texts non-empty)."""

    def preferences(self, prompt: dict, responses: list[str], pairs: list[tuple[int, int]]) -> list[float]:
        """`judge` with the `on_empty` policy applied and every answer checked to lie in [0, 1]."""
        for idx, text in enumerate(responses):
            if not isinstance(text, str):
                which = {0: "first", 1: "second"}.get(idx, f"#{idx}")
                raise JudgeInputError(f"judge {self.name}: prompt {prompt.get('id', '?')}: the {which} response "
                                      f"is {type(text).__name__}, not text")
        out: list[float | None] = [None] * len(pairs)
        ask = []
        for n, (i, j) in enumerate(pairs):
            empty_a, empty_b = not responses[i].strip(), not responses[j].strip()
            if not (empty_a or empty_b):
                ask.append(n)
            elif self.on_empty == "error":
                raise JudgeInputError(f"judge {self.name}: prompt {prompt.get('id', '?')}: the "
                                      f"{'first' if empty_a else 'second'} response is empty "
                                      "(judge.on_empty is 'error')")
            else:
                out[n] = 0.5 if empty_a and empty_b else (0.0 if empty_a else 1.0)
        if ask:
            for n, p in zip(ask, self.judge(prompt, responses, [pairs[n] for n in ask])):
                p = float(p)
                if not (0.0 <= p <= 1.0):
                    raise JudgeInputError(f"judge {self.name} returned P={p} outside [0, 1]")
                out[n] = p
        return out

    def preference(self, prompt: dict, a: str, b: str) -> float:
        """P(a ≻ b) for one pair."""
        return self.preferences(prompt, [a, b], [(0, 1)])[0]

    def matrix(self, prompt: dict, responses: list[str]) -> np.ndarray:
        """The K × K matrix P[i, j] of one prompt's responses (every pair judged once, in one batch)."""
        n = len(responses)
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        mat = np.full((n, n), 0.5)
        for (i, j), p in zip(pairs, self.preferences(prompt, responses, pairs)):
            mat[i, j], mat[j, i] = p, 1.0 - p
        return mat


class PairwiseJudge(Judge):
    """A judge that sees one pair at a time: `compare(prompt, a, b)`; `judge` asks it pair by pair."""

    @abc.abstractmethod
    def compare(self, prompt: dict, a: str, b: str) -> float:
        """P(a ≻ b) for one ordered pair of responses to `prompt`."""

    def judge(self, prompt, responses, pairs):
        return [self.compare(prompt, responses[i], responses[j]) for i, j in pairs]


class BothOrdersJudge(PairwiseJudge):
    """A judge shown the two responses as A and B: P(a ≻ b) = ½ · [p_A(a, b) + (1 − p_A(b, a))],
    asking in both orders to cancel position bias. `p_first_many` answers a batch of (a, b) shown as (A, B);
    a judge that can answer them concurrently overrides it."""

    @abc.abstractmethod
    def p_first(self, prompt: dict, a: str, b: str) -> float:
        """The judge's probability that the response shown first (A) is the better one."""

    def p_first_many(self, prompt: dict, shown: list[tuple[str, str]]) -> list[float]:
        return [self.p_first(prompt, a, b) for a, b in shown]

    def compare(self, prompt: dict, a: str, b: str) -> float:
        return self.judge(prompt, [a, b], [(0, 1)])[0]

    def judge(self, prompt, responses, pairs):
        shown = [(responses[i], responses[j]) for i, j in pairs] + [(responses[j], responses[i]) for i, j in pairs]
        p = self.p_first_many(prompt, shown)
        n = len(pairs)
        return [0.5 * (p[k] + 1.0 - p[n + k]) for k in range(n)]


class JudgeCache:
    """A sqlite table `key -> p` keyed by sha256(judge identity, prompt messages and meta, a, b); safe across
    processes. The key holds everything that determines an answer: the panel reads the prompt's meta (its
    constraints and topic), so two prompts with the same text and different constraints are different questions."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.hits = 0
        self.misses = 0
        self._mem: dict[str, float] = {}
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                con.execute("CREATE TABLE IF NOT EXISTS prefs (key TEXT PRIMARY KEY, p REAL NOT NULL)")

    def _connect(self):
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    @staticmethod
    def key(identity: dict, prompt: dict, a: str, b: str) -> str:
        blob = json.dumps([identity, prompt["messages"], prompt.get("meta"), a, b], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, float]:
        found = {k: self._mem[k] for k in keys if k in self._mem}
        rest = [k for k in keys if k not in found]
        if self.path and rest:
            with self._connect() as con:
                for chunk in range(0, len(rest), 500):
                    part = rest[chunk:chunk + 500]
                    q = f"SELECT key, p FROM prefs WHERE key IN ({','.join('?' * len(part))})"
                    found.update(dict(con.execute(q, part).fetchall()))
        return found

    def put_many(self, items: dict[str, float]) -> None:
        self._mem.update(items)
        if self.path and items:
            with self._connect() as con:
                con.executemany("INSERT OR REPLACE INTO prefs (key, p) VALUES (?, ?)", list(items.items()))


class CachedJudge:
    """A judge behind the content-hash cache and the identical-text rule — what annotation and every evaluation
    ask. Two identical texts tie (P = ½) without a judge; a pair the cache knows is not judged again; the rest of
    a batch goes to the judge in one `preferences` call. Counts judge calls, cache hits and identical pairs."""

    def __init__(self, judge: Judge, cache: JudgeCache | None = None):
        self.judge, self.cache, self.identity = judge, cache or JudgeCache(None), judge.identity()
        self.calls = self.hits = self.identical = 0

    def preferences(self, prompt: dict, responses: list[str], pairs: list[tuple[int, int]]) -> list[float]:
        out: list[float | None] = [None] * len(pairs)
        keys: dict[int, str] = {}
        for n, (i, j) in enumerate(pairs):
            if responses[i] == responses[j]:
                out[n] = 0.5
                self.identical += 1
            else:
                keys[n] = JudgeCache.key(self.identity, prompt, responses[i], responses[j])
        known = self.cache.get_many(sorted(set(keys.values())))
        ask: dict[str, int] = {}            # one judge call per distinct key of the batch
        for n, k in keys.items():
            if k in known:
                out[n] = known[k]
                self.hits += 1
            else:
                ask.setdefault(k, n)
        if ask:
            got = self.judge.preferences(prompt, responses, [pairs[n] for n in ask.values()])
            fresh = dict(zip(ask, got))
            self.cache.put_many(fresh)
            self.calls += len(fresh)
            for n, k in keys.items():
                if out[n] is None:
                    out[n] = fresh[k]
        return out

    def __call__(self, prompt: dict, a: str, b: str) -> float:
        return self.preferences(prompt, [a, b], [(0, 1)])[0]


class _JudgedPairs:
    """One prompt's preferences for the annotation job: `[a, b]` → P(y_a ≻ y_b) over the responses the plan sees
    (`keep`: all of them, or the finished ones under sampling.truncated: drop), asking a rule or the cached judge
    once per unordered pair of original indices. Plays the role of a Group's P while a comparison plan runs, so
    the plan decides which pairs are judged; `prefetch` judges the pairs a plan will read in one batch (an
    adaptive plan — INPO's tournament — asks pair by pair as it goes)."""

    def __init__(self, cached: CachedJudge, prompt, resp, cut, mode, keep):
        self.cached, self.prompt, self.resp, self.cut, self.mode, self.keep = cached, prompt, resp, cut, mode, keep
        self.p: dict[tuple[int, int], float] = {}   # original (i < j) -> P(y_i ≻ y_j)
        self.by_rule = 0

    def __getitem__(self, ab):
        i, j = self.keep[int(ab[0])], self.keep[int(ab[1])]
        if i > j:
            return 1.0 - self._pref(j, i)
        return self._pref(i, j)

    def _pref(self, i, j):
        if (i, j) not in self.p:
            self.prefetch([(i, j)])
        return self.p[(i, j)]

    def prefetch(self, pairs: list[tuple[int, int]]) -> None:
        """Judge these pairs (original indices, i < j) now, in one batch: under sampling.truncated: lose a cut
        response loses to a finished one by rule, without the judge."""
        todo = []
        for i, j in pairs:
            if (i, j) in self.p:
                continue
            if self.mode == "lose" and self.cut[i] != self.cut[j]:
                self.by_rule += 1
                self.p[(i, j)] = 0.0 if self.cut[i] else 1.0
            else:
                todo.append((i, j))
        for pair, p in zip(todo, self.cached.preferences(self.prompt, self.resp, todo)):
            self.p[pair] = p


def _plan_pairs(plan: dict, pid: str, kept: list[str]) -> list[tuple[int, int]]:
    """The pairs (indices into `kept`) a non-adaptive plan reads, known before any judgment; [] for adaptive ones."""
    from ..algorithms.base import Group, disjoint_pairs

    if plan["plan"] == "all":
        return [(i, j) for i in range(len(kept)) for j in range(i + 1, len(kept))]
    if plan["plan"] == "disjoint":
        return disjoint_pairs(Group(pid, kept, None, plan_seed=int(plan.get("seed", 0))))
    return []


def annotate_groups(judge: Judge, prompts: dict[str, dict], groups: dict[str, list[str]],
                    cache: JudgeCache | None = None, desc: str = "judging",
                    truncated: dict[str, list[bool]] | None = None, mode: str = "keep",
                    plans: list[dict] | None = None) -> tuple[list[dict], dict]:
    """Judge the pairs (i < j) of each prompt's responses that the comparison plans read.

    `plans`: `[{"plan": one of algorithms.base.PLANS, "seed": the plan seed}, …]` — the union of the pairs
    they read is judged (default: all pairs). A plan runs on a Group whose P is judged on first read, so
    an adaptive plan (INPO's tournament) is played bracket by bracket, and with the trainer's plan seed the
    trainer reads exactly these pairs.

    Returns (rows, stats): rows `{prompt_id, i, j, p}`; stats counts pairs, judge calls and cache hits.
    A pair whose two texts are identical gets p = ½ without a judge call. `truncated[pid][i]` marks a
    response that stopped at max_new_tokens; `mode` (sampling.truncated) says what happens to it: keep —
    judged like any other; drop — the plans see only the finished responses, and no pair with a cut one is
    judged or written (`truncated_dropped_pairs` counts such pairs among all K(K−1)/2); lose — it loses to
    every finished response (p = 0 or 1, no judge call), two truncated ones are judged.
    """
    from ..algorithms.base import PLANS, Group, run_plan

    if mode not in ("keep", "drop", "lose"):
        raise ValueError(f"sampling.truncated: {mode!r} is not keep, drop or lose")
    plans = plans or [{"plan": "all", "seed": 0}]
    for plan in plans:
        if plan.get("plan") not in PLANS:
            raise ValueError(f"annotation plan {plan!r}: plan must be one of {', '.join(PLANS)}")
    if any(plan["plan"] == "all" for plan in plans):
        plans = [{"plan": "all", "seed": 0}]          # every pair: contains every other plan's
    cached = CachedJudge(judge, cache)
    rows, by_rule, dropped = [], 0, 0
    for pid in tqdm(sorted(groups), desc=desc, unit="prompt"):
        prompt, resp = prompts[pid], groups[pid]
        cut = (truncated or {}).get(pid) or [False] * len(resp)
        for idx, text in enumerate(resp):
            if not isinstance(text, str):
                raise JudgeInputError(f"prompt {pid}: response {idx} is not text")
        keep = [i for i in range(len(resp)) if not (mode == "drop" and cut[i])]
        dropped += len(resp) * (len(resp) - 1) // 2 - len(keep) * (len(keep) - 1) // 2
        pairs = _JudgedPairs(cached, prompt, resp, cut, mode, keep)
        kept = [resp[i] for i in keep]
        pairs.prefetch(sorted({tuple(sorted((keep[a], keep[b]))) for plan in plans
                               for a, b in _plan_pairs(plan, pid, kept)}))
        for plan in plans:
            run_plan(plan["plan"], Group(pid, kept, pairs, plan_seed=int(plan.get("seed", 0))))
        rows += [{"prompt_id": pid, "i": i, "j": j, "p": p} for (i, j), p in sorted(pairs.p.items())]
        by_rule += pairs.by_rule
    totals = {"calls": cached.calls, "hits": cached.hits, "identical": cached.identical, "by_rule": by_rule}
    stats = {"pairs": len(rows), "judge_calls": totals["calls"], "cache_hits": totals["hits"],
             "identical_pairs": totals["identical"], "truncated_mode": mode, "truncated_rule_pairs": totals["by_rule"],
             "truncated_dropped_pairs": dropped, "plans": plans}
    return rows, stats


# The judges by `judge.name`: "module:Class", imported when first made (the model judges import torch, the panel
# does not). A new judge is one module with a Judge subclass (its `from_config`) and one entry here (or a
# `register_judge` call); the schema's `judge.name` lists the names a config may use.
JUDGES: dict[str, str] = {
    "panel": "gamealign.judges.panel:PanelJudge",
    "reward_model": "gamealign.judges.reward_model:RewardModelJudge",
    "pairwise_model": "gamealign.judges.pairwise_model:PairwiseModelJudge",
    "http": "gamealign.judges.http_judge:HTTPJudge",
}


def register_judge(name: str, target: str) -> None:
    """Make `judge.name: <name>` build the Judge subclass at `target` ("module:Class")."""
    if name in JUDGES and JUDGES[name] != target:
        raise ValueError(f"judge {name!r} is already registered as {JUDGES[name]}")
    JUDGES[name] = target


def make_judge(cfg: dict) -> Judge:
    """The judge named by the config's `judge` section (DESIGN.md §5)."""
    import importlib

    from ..config import fill_section, load_schema

    name = cfg["name"]
    if name not in JUDGES:
        raise JudgeInputError(f"judge.name: unknown judge {name!r} (registered: {', '.join(sorted(JUDGES))})")
    module, cls = JUDGES[name].split(":")
    if name in load_schema()["properties"]["judge"]["properties"]["name"]["enum"]:
        cfg = fill_section("judge", cfg)    # every default from the schema, none of the judge's own
    judge = getattr(importlib.import_module(module), cls).from_config(cfg)
    judge.on_empty = cfg.get("on_empty", "lose")
    return judge
