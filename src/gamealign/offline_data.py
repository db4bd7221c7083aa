"""A ready-made preference dataset as the offline algorithms' fixed pairs (`offline_data`, DESIGN.md §3).

The format is UltraFeedback-binarized's (HuggingFaceH4/ultrafeedback_binarized): one row per prompt with
`chosen` and `rejected` conversations (lists of {role, content} messages) that share the prompt's turns and end
in the two assistant answers; `prompt` and `prompt_id` are optional (taken from the conversation when absent).
A local JSONL or parquet file, or (online) a hub dataset id and split. Every row is checked; a bad one stops the
import naming the file and the row.

The rows are written in the study's own formats, so DPO's and SPAC's example building reads them as it reads
annotated samples: `prompts.jsonl` (the prompts), `samples.jsonl` (k 0 = chosen, k 1 = rejected, finished),
`prefs.parquet` (P(chosen ≻ rejected) = 1), and stats files that say no response was sampled and no judge was
asked (the labels came with the dataset), so the sample-efficiency counts charge neither.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .io import DataError, atomic_path, write_json, write_jsonl


def _messages(value, where: str, key: str) -> list[dict]:
    if isinstance(value, str):           # some exports store the conversation as a JSON string
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: '{key}' is a string, not a list of messages") from exc
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(f"{where}: '{key}' must be a non-empty list of {{role, content}} messages")
    out = []
    for n, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DataError(f"{where}: '{key}' message {n} is not {{role, content}} text")
        out.append({"role": m["role"], "content": m["content"]})
    if out[-1]["role"] != "assistant" or not out[-1]["content"].strip():
        raise DataError(f"{where}: '{key}' must end with a non-empty assistant answer")
    return out


def parse_row(row: dict, where: str) -> dict:
    """One dataset row → {prompt: {id, messages, meta}, chosen: text, rejected: text}; DataError naming `where`."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: not a JSON object")
    for key in ("chosen", "rejected"):
        if key not in row:
            raise DataError(f"{where}: missing field '{key}' (UltraFeedback-binarized: prompt, chosen, rejected)")
    chosen, rejected = _messages(row["chosen"], where, "chosen"), _messages(row["rejected"], where, "rejected")
    turns = chosen[:-1]
    if turns != rejected[:-1]:
        raise DataError(f"{where}: 'chosen' and 'rejected' do not share their prompt turns")
    if not turns or turns[-1]["role"] != "user":
        raise DataError(f"{where}: the conversation has no user turn before the answers")
    if isinstance(row.get("prompt"), str) and row["prompt"].strip() and row["prompt"].strip() != turns[-1]["content"].strip():
        raise DataError(f"{where}: 'prompt' differs from the conversation's last user turn")
    if chosen[-1]["content"] == rejected[-1]["content"]:
        raise DataError(f"{where}: 'chosen' and 'rejected' give the same answer")
    text = "\n".join(m["content"] for m in turns)
    pid = str(row.get("prompt_id") or hashlib.sha256(text.encode()).hexdigest()[:16])
    meta = {"source": "offline_data", **{k: row[k] for k in ("score_chosen", "score_rejected") if k in row}}
    return {"prompt": {"id": pid, "messages": turns, "meta": meta},
            "chosen": chosen[-1]["content"], "rejected": rejected[-1]["content"]}


def read_rows(params: dict) -> list[dict]:
    """The dataset's rows, parsed and checked (`params`: the config's offline_data section)."""
    source, path, limit = params["source"], params.get("path"), params.get("limit")
    if source == "file":
        p = Path(path)
        if not p.is_file():
            raise DataError(f"offline_data.path: {p} does not exist")
        if p.suffix == ".parquet":
            import pandas as pd

            raw = pd.read_parquet(p).to_dict("records")
            where = [f"{p}: row {n}" for n in range(1, len(raw) + 1)]
        else:
            raw, where = [], []
            for n, line in enumerate(p.read_text().splitlines(), start=1):
                if line.strip():
                    try:
                        raw.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{p}:{n}: not valid JSON ({exc.msg})") from exc
                    where.append(f"{p}:{n}")
    elif source == "hf":
        from datasets import load_dataset  # online only

        raw = list(load_dataset(path, split=params.get("split", "train_prefs")))
        where = [f"{path}[{params.get('split')}]: row {n}" for n in range(len(raw))]
    else:
        raise ValueError(f"offline_data.source: {source!r} is not file or hf")
    rows, seen = [], set()
    for row, at in zip(raw, where):
        parsed = parse_row(row, at)
        if parsed["prompt"]["id"] in seen:      # one pair per prompt, as one annotated group would give
            continue
        seen.add(parsed["prompt"]["id"])
        rows.append(parsed)
        if limit and len(rows) >= limit:
            break
    if not rows:
        raise DataError(f"offline_data: {path} has no rows")
    return rows


def write_study_files(rows: list[dict], out_dir, params: dict) -> dict:
    """The rows as prompts.jsonl, samples.jsonl, prefs.parquet and their stats, atomically in `out_dir`."""
    import pandas as pd

    from .provenance import manifest

    samples = [{"prompt_id": r["prompt"]["id"], "k": k, "text": r[key], "n_tokens": None, "finish_reason": "stop"}
               for r in rows for k, key in ((0, "chosen"), (1, "rejected"))]
    prefs = pd.DataFrame([{"prompt_id": r["prompt"]["id"], "i": 0, "j": 1, "p": 1.0} for r in rows])
    prefs = prefs.astype({"i": "int32", "j": "int32", "p": "float64"})
    info = {"rows": len(rows), "path": params.get("path"), "source": params["source"]}
    with atomic_path(out_dir, is_dir=True) as tmp:
        write_jsonl(tmp / "prompts.jsonl", [r["prompt"] for r in rows])
        write_jsonl(tmp / "samples.jsonl", samples)
        prefs.to_parquet(tmp / "prefs.parquet", index=False)
        # nothing was sampled and nothing judged: the dataset's answers and labels are charged to no algorithm
        write_json(tmp / "samples.stats.json", {**manifest("offline_data", params, None), "n_sequences": 0,
                                                "truncated": 0, "dataset_responses": len(samples), **info})
        write_json(tmp / "prefs.stats.json", {**manifest("offline_data", params, None), "judge_comparisons": 0,
                                              "pairs": len(rows), "dataset_pairs": len(rows), **info})
    return info
