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
    """Subclasses implement `compare(prompt, a, b) -> P(a ≻ b)` for one ordered pair of non-empty texts.

    Callers use `preference`, which applies the `on_empty` policy first: an empty (whitespace-only)
    response is never sent to the judge — with `lose` it loses to any non-empty response (P = 0) and
    ties another empty one (P = ½); with `error` it is refused with a JudgeInputError.
    """

    name = "judge"
    on_empty = "lose"

    def identity(self) -> dict:
        """What determines this judge's answers (cache key and provenance)."""
        return {"name": self.name}

    @abc.abstractmethod
    def compare(self, prompt: dict, a: str, b: str) -> float:
        """P(a ≻ b) for one ordered pair of responses to `prompt`."""

    def preference(self, prompt: dict, a: str, b: str) -> float:
        for which, text in (("first", a), ("second", b)):
            if not isinstance(text, str):
                raise JudgeInputError(f"judge {self.name}: prompt {prompt.get('id', '?')}: the {which} response "
                                      f"is {type(text).__name__}, not text")
        empty_a, empty_b = not a.strip(), not b.strip()
        if empty_a or empty_b:
            if self.on_empty == "error":
                raise JudgeInputError(f"judge {self.name}: prompt {prompt.get('id', '?')}: the "
                                      f"{'first' if empty_a else 'second'} response is empty "
                                      "(judge.on_empty is 'error')")
            return 0.5 if empty_a and empty_b else (0.0 if empty_a else 1.0)
        p = float(self.compare(prompt, a, b))
        if not (0.0 <= p <= 1.0):
            raise JudgeInputError(f"judge {self.name} returned P={p} outside [0, 1]")
        return p

    def judge(self, prompt: dict, responses: list[str]) -> np.ndarray:
        n = len(responses)
        mat = np.full((n, n), 0.5)
        for i in range(n):
            for j in range(i + 1, n):
                mat[i, j] = self.preference(prompt, responses[i], responses[j])
                mat[j, i] = 1.0 - mat[i, j]
        return mat


class BothOrdersJudge(Judge):
    """A judge shown the two responses as A and B: P(a ≻ b) = ½ · [p_A(a, b) + (1 − p_A(b, a))],
    asking in both orders to cancel position bias."""

    @abc.abstractmethod
    def p_first(self, prompt: dict, a: str, b: str) -> float:
        """The judge's probability that the response shown first (A) is the better one."""

    def compare(self, prompt: dict, a: str, b: str) -> float:
        return 0.5 * (self.p_first(prompt, a, b) + 1.0 - self.p_first(prompt, b, a))


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


class _JudgedPairs:
    """One prompt's preferences, judged on first read: `[a, b]` → P(y_a ≻ y_b) over the responses the plan sees
    (`keep`: all of them, or the finished ones under sampling.truncated: drop), asking the cache, a rule or the
    judge once per unordered pair of original indices. Plays the role of a Group's P while the annotation job
    runs a comparison plan, so the plan decides which pairs are judged."""

    def __init__(self, judge, identity, prompt, resp, cut, mode, keep, cache: JudgeCache):
        self.judge, self.identity, self.prompt, self.resp, self.cut, self.mode = judge, identity, prompt, resp, cut, mode
        self.keep = keep
        # one cache lookup for the whole group (rule-decided and identical pairs never reach it)
        self.known = cache.get_many([self.key(i, j) for n, i in enumerate(keep) for j in keep[n + 1:]])
        self.p: dict[tuple[int, int], float] = {}   # original (i < j) -> P(y_i ≻ y_j)
        self.fresh: dict[str, float] = {}
        self.calls = self.hits = self.identical = self.by_rule = 0

    def key(self, i, j):
        return JudgeCache.key(self.identity, self.prompt, self.resp[i], self.resp[j])

    def __getitem__(self, ab):
        i, j = self.keep[int(ab[0])], self.keep[int(ab[1])]
        if i > j:
            return 1.0 - self._pref(j, i)
        return self._pref(i, j)

    def _pref(self, i, j):
        if (i, j) not in self.p:
            self.p[(i, j)] = self._judge(i, j)
        return self.p[(i, j)]

    def _judge(self, i, j):
        resp, cut = self.resp, self.cut
        if self.mode == "lose" and cut[i] != cut[j]:
            self.by_rule += 1
            return 0.0 if cut[i] else 1.0
        if resp[i] == resp[j]:
            self.identical += 1
            return 0.5
        k = self.key(i, j)
        for store in (self.known, self.fresh):
            if k in store:
                self.hits += 1
                return store[k]
        self.fresh[k] = p = self.judge.preference(self.prompt, resp[i], resp[j])
        self.calls += 1
        return p


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
    cache = cache or JudgeCache(None)
    identity = judge.identity()
    rows, totals, dropped = [], {"calls": 0, "hits": 0, "identical": 0, "by_rule": 0}, 0
    for pid in tqdm(sorted(groups), desc=desc, unit="prompt"):
        prompt, resp = prompts[pid], groups[pid]
        cut = (truncated or {}).get(pid) or [False] * len(resp)
        for idx, text in enumerate(resp):
            if not isinstance(text, str):
                raise JudgeInputError(f"prompt {pid}: response {idx} is not text")
        keep = [i for i in range(len(resp)) if not (mode == "drop" and cut[i])]
        dropped += len(resp) * (len(resp) - 1) // 2 - len(keep) * (len(keep) - 1) // 2
        pairs = _JudgedPairs(judge, identity, prompt, resp, cut, mode, keep, cache)
        for plan in plans:
            run_plan(plan["plan"], Group(pid, [resp[i] for i in keep], pairs, plan_seed=int(plan.get("seed", 0))))
        rows += [{"prompt_id": pid, "i": i, "j": j, "p": p} for (i, j), p in sorted(pairs.p.items())]
        cache.put_many(pairs.fresh)
        for name in totals:
            totals[name] += getattr(pairs, name)
    stats = {"pairs": len(rows), "judge_calls": totals["calls"], "cache_hits": totals["hits"],
             "identical_pairs": totals["identical"], "truncated_mode": mode, "truncated_rule_pairs": totals["by_rule"],
             "truncated_dropped_pairs": dropped, "plans": plans}
    return rows, stats


def make_judge(cfg: dict) -> Judge:
    """The judge named by the config's `judge` section (DESIGN.md §5)."""
    name = cfg["name"]
    if name == "panel":
        from .panel import PanelJudge

        judge = PanelJudge(cfg.get("criteria"))
    elif name == "reward_model":
        from .reward_model import RewardModelJudge

        judge = RewardModelJudge(cfg.get("path"), max_length=cfg.get("max_length", 1024),
                                 batch_size=cfg.get("batch_size", 8))
    elif name == "pairwise_model":
        from .pairwise_model import PairwiseModelJudge

        judge = PairwiseModelJudge(cfg.get("path"), max_length=cfg.get("max_length", 1024))
    elif name == "http":
        from .http_judge import HTTPJudge

        judge = HTTPJudge(**(cfg.get("http") or {}))
    else:
        raise JudgeInputError(f"judge.name: unknown judge {name!r}")
    judge.on_empty = cfg.get("on_empty", "lose")
    return judge
