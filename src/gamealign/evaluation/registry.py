"""The benchmarks, declared once: what the Snakemake rules, the CLI, the report and the config checks read.

Every benchmark is load → generate → judge (or check, or run tasks) → aggregate. Its entry names how:
- `kind`: "judged" — each model's greedy answers against a baseline's under the evaluation judge (a win rate
  with a CI; the report's primary benchmark must be one), "checked" — answers checked without a judge
  (IFEval-style constraints), "tasks" — lm-evaluation-harness tasks on the model itself.
- `prompts`: the prompt set its answers come from ("heldout", or its own file from `bench_data`).
- `score_file`: the score's file name under `eval/<model_id>/`.
- `per_prompt`: for a judged benchmark, a judgments-file row → the model's win probability on that prompt
  (what the seeds × prompts bootstrap and the paired tables resample).
- `title`, `columns`: the report's section title and the table's extra columns.
- `scorer`, `settings`: for a judged benchmark with its own reference answers, the function `gamealign score`
  runs ("module:function", imported when used) and the keyword arguments it takes from the benchmark's config
  section.

A new judged benchmark is a scorer module that writes `<score_file>` (the fields `report.collect` reads) and
its judgments file, plus an entry here (`register_benchmark`); `gamealign score --bench <name>` runs it, and the
report reads it by kind. In a study config it also needs its name in the schema's `evaluation.benchmarks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Benchmark:
    name: str
    kind: str                                   # judged | checked | tasks
    title: str
    score_file: str
    prompts: str = "heldout"
    per_prompt: Callable[[dict], float] | None = None
    columns: tuple[str, ...] = field(default_factory=tuple)
    scorer: str | None = None
    settings: Callable[[dict], dict] = lambda section: {}
    official: str | None = None                 # the benchmark's own protocol (evaluation.protocol: official)

    def score(self, protocol: str = "builtin", **kwargs) -> dict:
        """Run this benchmark's scorer (kind judged, own reference answers) with its config section's settings;
        `protocol` official runs the benchmark's own judging protocol instead."""
        import importlib

        target = self.official if protocol == "official" else self.scorer
        if not target:
            raise ValueError(f"benchmark {self.name!r} has no {protocol} scorer (kind {self.kind})")
        module, fn = target.split(":")
        section = kwargs.pop("section", None) or {}
        settings = self.settings(section)
        if protocol == "official" and "annotator" in section:
            settings["annotator"] = section["annotator"]
        return getattr(importlib.import_module(module), fn)(**settings, **kwargs)


def _arena_hard_per_prompt(row: dict) -> float:
    """The model's win probability on one Arena-Hard question: both orders averaged (builtin P, or the official
    protocol's verdicts)."""
    if "verdict_model_first" in row:
        from .official import official_per_prompt

        return official_per_prompt(row)
    return 0.5 * (row["p_model_wins_model_first"] + 1.0 - row["p_baseline_wins_baseline_first"])


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("heldout", "judged", "Held-out win rate against the SFT model", "heldout_winrate.json",
              per_prompt=lambda r: r["p_candidate_wins"]),
    Benchmark("alpaca_eval", "judged", "AlpacaEval 2.0 (win rate and length-controlled win rate)", "alpaca_eval.json",
              prompts="alpaca_eval", per_prompt=lambda r: r["p_model_wins"], columns=("lc_win_rate",),
              scorer="gamealign.evaluation.scoring:score_alpaca_eval", settings=lambda p: {"lc_glm": p["lc_glm"]},
              official="gamealign.evaluation.official:score_alpaca_eval_official"),
    Benchmark("arena_hard", "judged", "Arena-Hard-Auto v0.1 (Bradley–Terry score vs the baseline)", "arena_hard.json",
              prompts="arena_hard",
              per_prompt=lambda r: _arena_hard_per_prompt(r),
              scorer="gamealign.evaluation.scoring:score_arena_hard",
              official="gamealign.evaluation.official:score_arena_hard_official",
              settings=lambda p: {"n_boot": p["n_boot"], "bootstrap": p.get("bootstrap", "question")}),
    Benchmark("ifeval", "checked", "IFEval-style instruction following (no judge)", "ifeval.json"),
    Benchmark("open_llm", "tasks", "Open LLM Leaderboard v1", "open_llm.json"),
)}


def register_benchmark(bench: Benchmark) -> None:
    if bench.name in BENCHMARKS and BENCHMARKS[bench.name] != bench:
        raise ValueError(f"benchmark {bench.name!r} is already registered")
    BENCHMARKS[bench.name] = bench


def of_kind(kind: str) -> list[str]:
    return [name for name, b in BENCHMARKS.items() if b.kind == kind]


def scored_against_reference() -> list[str]:
    """The judged benchmarks with their own prompt set and reference answers (`gamealign score`, `bench-data`)."""
    return [name for name, b in BENCHMARKS.items() if b.kind == "judged" and b.prompts != "heldout"]
