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
    pass


class Judge(abc.ABC):
    """Subclasses implement `compare(prompt, a, b) -> P(a ≻ b)` for one ordered pair."""

    name = "judge"

    def identity(self) -> dict:
        """What determines this judge's answers (cache key and provenance)."""
        return {"name": self.name}

    @abc.abstractmethod
    def compare(self, prompt: dict, a: str, b: str) -> float:
        """P(a ≻ b) for one ordered pair of responses to `prompt`."""

    def judge(self, prompt: dict, responses: list[str]) -> np.ndarray:
        n = len(responses)
        mat = np.full((n, n), 0.5)
        for i in range(n):
            for j in range(i + 1, n):
                mat[i, j] = self.compare(prompt, responses[i], responses[j])
                mat[j, i] = 1.0 - mat[i, j]
        return mat


class JudgeCache:
    """A sqlite table `key -> p` keyed by sha256(judge identity, prompt, a, b); safe across processes."""

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
        blob = json.dumps([identity, prompt["messages"], a, b], sort_keys=True, ensure_ascii=False)
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


def annotate_groups(judge: Judge, prompts: dict[str, dict], groups: dict[str, list[str]],
                    cache: JudgeCache | None = None, desc: str = "judging") -> tuple[list[dict], dict]:
    """Judge every unordered pair (i < j) of each prompt's responses.

    Returns (rows, stats): rows `{prompt_id, i, j, p}`; stats counts pairs, judge calls and cache hits.
    A pair whose two texts are identical gets p = ½ without a judge call.
    """
    cache = cache or JudgeCache(None)
    identity = judge.identity()
    rows, calls, hits, identical = [], 0, 0, 0
    for pid in tqdm(sorted(groups), desc=desc, unit="prompt"):
        prompt, resp = prompts[pid], groups[pid]
        for idx, text in enumerate(resp):
            if not isinstance(text, str):
                raise JudgeInputError(f"prompt {pid}: response {idx} is not text")
        pairs = [(i, j) for i in range(len(resp)) for j in range(i + 1, len(resp))]
        keys = {(i, j): JudgeCache.key(identity, prompt, resp[i], resp[j]) for i, j in pairs}
        known = cache.get_many(list(keys.values()))
        fresh = {}
        for i, j in pairs:
            k = keys[(i, j)]
            if resp[i] == resp[j]:
                p = 0.5
                identical += 1
            elif k in known:
                p = known[k]
                hits += 1
            elif k in fresh:
                p = fresh[k]
                hits += 1
            else:
                p = float(judge.compare(prompt, resp[i], resp[j]))
                if not 0.0 <= p <= 1.0:
                    raise JudgeInputError(f"judge {judge.name} returned P={p} outside [0, 1]")
                fresh[k] = p
                calls += 1
            rows.append({"prompt_id": pid, "i": i, "j": j, "p": p})
        cache.put_many(fresh)
    stats = {"pairs": len(rows), "judge_calls": calls, "cache_hits": hits, "identical_pairs": identical}
    return rows, stats


def make_judge(cfg: dict) -> Judge:
    name = cfg["name"]
    if name == "panel":
        from .panel import PanelJudge

        return PanelJudge(cfg.get("criteria"))
    raise ValueError(f"judge.name: unknown judge {name!r}")
