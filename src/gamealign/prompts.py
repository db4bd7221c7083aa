"""Prompt sets: a seeded built-in generator of instructions with verifiable constraints, and loaders.

Every prompt record is `{id, messages: [{role, content}], meta}` (DESIGN.md §3). The built-in
generator draws (task, topic, constraints) without replacement from a pool of tens of thousands of
distinct combinations, then splits them into disjoint per-round training partitions and a held-out
evaluation set.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from pathlib import Path

from . import constraints as C
from .io import DataError, read_jsonl

TASKS = [
    "Explain {topic} to a curious twelve-year-old.",
    "Give three practical tips about {topic}.",
    "Describe the main advantages and drawbacks of {topic}.",
    "Write a short story in which {topic} plays a central role.",
    "Summarise what a beginner should know about {topic}.",
    "Write a short persuasive paragraph in favour of {topic}.",
    "Compare {topic} with a close alternative and say which you prefer.",
    "Write a short poem about {topic}.",
    "List common misconceptions about {topic}.",
    "Draft a friendly email inviting a colleague to learn about {topic}.",
    "Explain how {topic} has changed over the last fifty years.",
    "Give a step-by-step plan for getting started with {topic}.",
]

TOPICS = [
    "urban gardening", "public libraries", "electric bicycles", "sourdough bread", "solar panels",
    "the water cycle", "learning a second language", "chess openings", "remote work", "composting",
    "volcanoes", "the history of maps", "bird migration", "board games", "recycling plastic",
    "night-time photography", "budget travel", "meditation", "honeybees", "weather forecasting",
    "the printing press", "coral reefs", "marathon training", "home insulation", "tea ceremonies",
    "open-source software", "rainwater harvesting", "the moon landing", "origami", "public transport",
    "vaccination", "jazz improvisation", "deep-sea exploration", "bicycle maintenance", "time zones",
    "desert ecosystems", "personal budgeting", "the immune system", "wind turbines", "museums",
    "fermented foods", "rock climbing", "the periodic table", "community radio", "sleep hygiene",
    "container shipping", "glaciers", "typography", "urban foxes", "kite flying", "lighthouses",
    "the olympic games", "mushroom foraging", "3D printing", "bridges", "handwriting", "beekeeping",
    "tidal energy", "ancient libraries", "space telescopes", "street food", "password security",
    "wetlands", "knitting", "the metric system", "train travel", "penguins", "small businesses",
    "carbon footprints", "stargazing", "first aid", "pottery", "the silk road", "earthquakes",
    "vertical farming", "podcasts", "hiking safety", "the human heart", "clean drinking water",
    "calligraphy", "robot vacuum cleaners", "rivers", "city parks", "spices", "sea turtles",
    "volunteering", "the rule of law", "cloud computing", "bamboo", "ice cream making",
    "mountain villages", "crossword puzzles", "public speaking", "lichen", "electric grids",
    "family recipes", "habit formation", "sailing", "the postal service", "insect hotels",
    "clock making", "radio astronomy", "school gardens", "minimalism", "snow leopards",
    "local elections", "paper making", "coffee roasting", "river dolphins", "car sharing",
]

# `prompts.style: short` — tasks that invite an answer of a sentence or two (SmolLM2-135M answers the open tasks
# above with a median of ≈ 147 tokens; a study that cuts answers at 40 trains on text that never finished)
SHORT_TASKS = [
    "In one or two sentences, explain what {topic} is.",
    "Give one practical tip about {topic}.",
    "What is the main advantage of {topic}? Answer briefly.",
    "Name one common misconception about {topic} and correct it briefly.",
    "Write a two-line poem about {topic}.",
    "Describe {topic} to a child in one sentence.",
    "Give one reason someone might enjoy {topic}.",
    "In a sentence, say why {topic} matters.",
]

WORDS_TO_INCLUDE = ["important", "simple", "because", "example", "future", "together", "careful",
                    "surprising", "daily", "balance", "curious", "patience"]
WORDS_TO_EXCLUDE = ["very", "really", "thing", "good", "bad", "just", "actually", "basically"]
PHRASES = ["That is all.", "Thank you for reading.", "Any questions?", "Enjoy!"]


def _constraint_pool(style: str = "open") -> list[dict]:
    """The constraints a prompt may carry; `short` keeps the ones a one- or two-sentence answer can meet and that
    SmolLM2-135M's sampled answers meet at least sometimes: json, lowercase and end_with are left out because 0 of 56,
    0 of 64 and 10 of 240 answers met them (4 samples each of 256 short prompts of a seed not the study's,
    `bench/constraint_signal.py`, docs/bench-cpu-2026-11-25/constraint_signal_short_256.json), so the annotator's
    pairs almost never differ on them and a study could not learn them (issue #14: attainable constraints)."""
    if style == "short":
        pool = [{"type": "max_words", "n": n} for n in (15, 25, 40)]
        pool += [{"type": "min_words", "n": 12}]
        pool += [{"type": "max_sentences", "n": n} for n in (1, 2)]
        pool += [{"type": "bullets", "n": 2}]
    else:
        pool = [{"type": "max_words", "n": n} for n in (25, 40, 60)]
        pool += [{"type": "min_words", "n": n} for n in (20, 40)]
        pool += [{"type": "max_sentences", "n": n} for n in (2, 3, 4)]
        pool += [{"type": "bullets", "n": n} for n in (2, 3, 4)]
    pool += [{"type": "include", "word": w} for w in WORDS_TO_INCLUDE]
    pool += [{"type": "exclude", "word": w} for w in WORDS_TO_EXCLUDE]
    if style == "short":   # the order below is the generator's: it fixes which prompts a seed draws
        return pool + [{"type": "title"}]
    pool += [{"type": "json"}, {"type": "title"}, {"type": "lowercase"}]
    pool += [{"type": "end_with", "phrase": p} for p in PHRASES]
    return pool


_EXCLUSIVE = {"json": {"bullets", "title", "end_with"}, "bullets": {"json"}, "title": {"json"},
              "end_with": {"json"}, "max_words": {"min_words"}, "min_words": {"max_words"}}


def _compatible(a: dict, b: dict) -> bool:
    if a["type"] == b["type"]:
        return False
    return b["type"] not in _EXCLUSIVE.get(a["type"], set())


def _prompt_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def builtin_prompts(n: int, seed: int, style: str = "open", constraint_types: list[str] | None = None) -> list[dict]:
    """`n` distinct prompts, deterministic in `seed`: one task × topic with 1–2 compatible constraints.
    `style`: open (TASKS, answers of a paragraph or more) or short (SHORT_TASKS, a sentence or two).
    `constraint_types`: only these types of the style's pool (None: all of them)."""
    if style not in ("open", "short"):
        raise ValueError(f"prompts.style: {style!r} is not open or short")
    tasks = SHORT_TASKS if style == "short" else TASKS
    rng = random.Random(seed)
    pool = _constraint_pool(style)
    if constraint_types is not None:
        offered = {c["type"] for c in pool}
        unknown = sorted(set(constraint_types) - offered)
        if unknown or not constraint_types:
            raise ValueError(f"prompts.constraint_types: {unknown or 'an empty list'} — the {style} style offers "
                             f"{', '.join(sorted(offered))}")
        pool = [c for c in pool if c["type"] in constraint_types]
    combos = [(c,) for c in pool] + [(a, b) for a, b in itertools.combinations(pool, 2) if _compatible(a, b)]
    capacity = len(tasks) * len(TOPICS) * len(combos)
    if n > capacity:
        raise ValueError(f"the built-in generator has {capacity} distinct prompts; {n} requested")
    seen: set[tuple[int, int, int]] = set()
    out = []
    while len(out) < n:
        key = (rng.randrange(len(tasks)), rng.randrange(len(TOPICS)), rng.randrange(len(combos)))
        if key in seen:
            continue
        seen.add(key)
        task, topic, cons = tasks[key[0]], TOPICS[key[1]], list(combos[key[2]])
        text = " ".join([task.format(topic=topic)] + [C.describe(c) for c in cons])
        out.append({"id": _prompt_id(text), "messages": [{"role": "user", "content": text}],
                    "meta": {"source": "builtin", "topic": topic, "task": task, "constraints": cons}})
    return out


def _record_from_row(row: dict, where: str) -> dict:
    if "messages" in row and isinstance(row["messages"], list):
        msgs = [m for m in row["messages"] if isinstance(m, dict)]
        # keep the conversation up to (and including) the last user turn
        while msgs and msgs[-1].get("role") != "user":
            msgs.pop()
        if not msgs:
            raise DataError(f"{where}: 'messages' has no user turn")
        messages = [{"role": m["role"], "content": str(m.get("content", ""))} for m in msgs]
    else:
        text = next((row[k] for k in ("prompt", "instruction", "question") if isinstance(row.get(k), str)), None)
        if text is None:
            raise DataError(f"{where}: needs a 'prompt', 'instruction', 'question' or 'messages' field")
        messages = [{"role": "user", "content": text}]
    if not any(m["content"].strip() for m in messages):
        raise DataError(f"{where}: empty prompt")
    content = "\n".join(m["content"] for m in messages)
    pid = str(row.get("id") or row.get("prompt_id") or _prompt_id(content))
    meta = {k: v for k, v in row.items() if k not in ("messages", "prompt", "instruction", "id", "prompt_id")
            and isinstance(v, (str, int, float, bool, type(None)))}
    meta.setdefault("source", "file")
    return {"id": pid, "messages": messages, "meta": meta}


def load_prompt_file(path: str | Path) -> list[dict]:
    """Prompts from a local JSONL or parquet file; a bad record raises DataError naming file and line."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pandas as pd

        rows = pd.read_parquet(path).to_dict(orient="records")
        if not rows:
            raise DataError(f"{path}: file is empty (no records)")
        return [_record_from_row(r, f"{path}:row {i + 1}") for i, r in enumerate(rows)]
    rows = read_jsonl(path)
    # read_jsonl skips blank lines; recover line numbers for field errors
    lines = [i for i, ln in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if ln.strip()]
    return [_record_from_row(r, f"{path}:{ln}") for r, ln in zip(rows, lines)]


def load_hf_prompts(dataset_id: str, split: str) -> list[dict]:
    from datasets import load_dataset

    ds = load_dataset(dataset_id, split=split)
    return [_record_from_row(dict(r), f"{dataset_id}[{split}]:{i}") for i, r in enumerate(ds)]


def make_prompt_sets(cfg: dict, rounds: int, seed: int) -> dict[str, list[dict]]:
    """Disjoint partitions: {'train_r1': [...], ..., 'eval_heldout': [...]} (+ 'validation' with `n_validation`:
    prompts for tuning settings, never the held-out ones)."""
    per_round, n_eval, n_val = cfg["per_round"], cfg["n_eval"], cfg.get("n_validation", 0)
    need = per_round * rounds + n_eval + n_val
    if cfg["source"] == "builtin":
        pool = builtin_prompts(need, seed, cfg.get("style", "open"), cfg.get("constraint_types"))
    else:
        pool = load_prompt_file(cfg["path"]) if cfg["source"] == "file" else load_hf_prompts(cfg["path"], cfg["split"])
        unique = {p["id"]: p for p in pool}
        pool = sorted(unique.values(), key=lambda p: p["id"])
        random.Random(seed).shuffle(pool)
        if len(pool) < need:
            raise DataError(f"{cfg['path']}: {len(pool)} distinct prompts, the study needs {need} "
                            f"({rounds} rounds × {per_round} + {n_eval} held-out)")
    sets = {"eval_heldout": pool[:n_eval]}
    for r in range(rounds):
        start = n_eval + r * per_round
        sets[f"train_r{r + 1}"] = pool[start:start + per_round]
    if n_val:   # after the others, so adding a validation set leaves every other partition as it was
        sets["validation"] = pool[n_eval + rounds * per_round:need]
    return sets
