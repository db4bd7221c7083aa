"""Open LLM Leaderboard v1 through lm-evaluation-harness (`lm_eval.simple_evaluate`, HF backend).

Six tasks with the leaderboard's shots and metrics (DESIGN.md §6); the score is their average.
Each task is a small YAML written for this run that `include`s lm-eval's own task definition (so its
prompts, choices, filters and metrics are lm-eval's) and sets the leaderboard's `num_fewshot`. With
`source: local` the YAML also points the task at JSONL files with the HF dataset's fields
(`dataset_path: json`), from `data_dir` laid out as `../shared/data/open_llm_leaderboard/`.

Where that folder lacks a split, what replaces it is fixed here and written into every score file
(`substitutions`):
- arc_challenge: few-shot pool = the 1056-of-1119 partial train file (the real train split is
  incomplete there).
- hellaswag: the only data is a lossy reconstruction of the validation split (`_approx/`); its
  10 shots come from that same file (lm-eval leaves the evaluated item out of its own context).
  Numbers are not comparable with the leaderboard's.
- winogrande: few-shot pool = `winogrande_l` train (the leaderboard samples from `winogrande_xl`).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import yaml

# task -> (metric key in lm-eval's results, num_fewshot)
LEADERBOARD = {
    "arc_challenge": ("acc_norm,none", 25),
    "hellaswag": ("acc_norm,none", 10),
    "mmlu": ("acc,none", 5),
    "truthfulqa_mc2": ("acc,none", 0),
    "winogrande": ("acc,none", 5),
    "gsm8k": ("exact_match,strict-match", 5),
}

SUBSTITUTIONS = {
    "arc_challenge": "25-shot pool: arc_challenge/train.partial_1056of1119.jsonl (1056 of the 1119 train items)",
    "hellaswag": ("test = _approx/hellaswag/validation.jsonl, a lossy text-dump reconstruction; 10-shot pool = "
                  "the same file without the evaluated item (the train split is missing); not leaderboard-comparable"),
    "winogrande": "5-shot pool: winogrande/train_l.jsonl (winogrande_l train; the leaderboard uses winogrande_xl)",
}


class LeaderboardDataError(FileNotFoundError):
    pass


def _tasks_dir() -> Path:
    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks"


def mmlu_subjects(data_dir: str | Path | None) -> list[str]:
    """The 57 MMLU subjects: the local folder's subfolders, or lm-eval's own list."""
    if data_dir:
        return sorted(p.name for p in (Path(data_dir) / "mmlu").iterdir() if (p / "test.jsonl").exists())
    return sorted(p.stem[len("mmlu_"):] for p in (_tasks_dir() / "mmlu" / "default").glob("mmlu_*.yaml"))


def _local_files(task: str, data_dir: Path, subject: str | None = None) -> dict:
    """(data_files, split overrides) of one task in the local layout; names a missing file."""
    files = {
        "arc_challenge": {"test": "arc_challenge/test.jsonl", "train": "arc_challenge/train.partial_1056of1119.jsonl"},
        "hellaswag": {"validation": "_approx/hellaswag/validation.jsonl"},
        "mmlu": {"test": f"mmlu/{subject}/test.jsonl", "dev": f"mmlu/{subject}/dev.jsonl"},
        "truthfulqa_mc2": {"validation": "truthfulqa_mc/validation.jsonl"},
        "winogrande": {"validation": "winogrande/validation.jsonl", "train": "winogrande/train_l.jsonl"},
        "gsm8k": {"test": "gsm8k/test.jsonl", "train": "gsm8k/train.jsonl"},
    }[task]
    resolved = {}
    for split, rel in files.items():
        path = (data_dir / rel).resolve()
        if not path.is_file():
            raise LeaderboardDataError(f"evaluation.open_llm.data_dir: {task} needs {path}, which does not exist")
        resolved[split] = str(path)
    splits = {
        "arc_challenge": {"training_split": "train", "validation_split": None, "test_split": "test",
                          "fewshot_split": "train"},
        "hellaswag": {"training_split": None, "validation_split": "validation", "test_split": None,
                      "fewshot_split": "validation"},
        "mmlu": {"test_split": "test", "fewshot_split": "dev"},
        "truthfulqa_mc2": {},
        "winogrande": {"training_split": "train", "validation_split": "validation", "fewshot_split": "train"},
        "gsm8k": {"training_split": "train", "test_split": "test", "fewshot_split": "train"},
    }[task]
    return {"dataset_path": "json", "dataset_name": None, "dataset_kwargs": {"data_files": resolved}, **splits}


def write_task_yamls(out_dir: str | Path, params: dict) -> dict[str, str]:
    """Write one YAML per task (and one per MMLU subject plus its group) into `out_dir`.

    Returns {leaderboard task: lm-eval task or group name to evaluate}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    builtin = _tasks_dir()
    local = params["source"] == "local"
    data_dir = Path(params["data_dir"]) if local else None
    if local and not data_dir.is_dir():
        raise LeaderboardDataError(f"evaluation.open_llm.data_dir: {data_dir.resolve()} is not a folder")
    gen = {"until": ["Question:", "</s>", "<|im_end|>"], "do_sample": False, "temperature": 0.0,
           "max_gen_toks": params["max_gen_toks"]}
    include = {"arc_challenge": "arc/arc_challenge.yaml", "hellaswag": "hellaswag/hellaswag.yaml",
               "truthfulqa_mc2": "truthfulqa/truthfulqa_mc2.yaml", "winogrande": "winogrande/default.yaml",
               "gsm8k": "gsm8k/gsm8k.yaml"}
    names = {}
    for task in params["tasks"]:
        _, shots = LEADERBOARD[task]
        if task == "mmlu":
            subjects = params.get("mmlu_subjects") or mmlu_subjects(data_dir)
            known = set(mmlu_subjects(None))
            bad = [s for s in subjects if s not in known]
            if bad:
                raise LeaderboardDataError(f"evaluation.open_llm.mmlu_subjects: unknown subject(s) {bad}")
            sub_names = []
            for subj in subjects:
                cfg = {"include": str(builtin / "mmlu" / "default" / f"mmlu_{subj}.yaml"),
                       "task": f"ga_mmlu_{subj}", "tag": [], "num_fewshot": shots}
                if local:
                    cfg.update(_local_files("mmlu", data_dir, subj))
                (out / f"ga_mmlu_{subj}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=True))
                sub_names.append(cfg["task"])
            group = {"group": "ga_mmlu", "task": sub_names,
                     "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}], "metadata": {"version": 2}}
            (out / "ga_mmlu.yaml").write_text(yaml.safe_dump(group, sort_keys=True))
            names[task] = "ga_mmlu"
            continue
        cfg = {"include": str(builtin / include[task]), "task": f"ga_{task}", "tag": [], "num_fewshot": shots}
        if task == "gsm8k":
            cfg["generation_kwargs"] = gen
        if local:
            cfg.update(_local_files(task, data_dir))
        (out / f"ga_{task}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=True))
        names[task] = cfg["task"]
    return names


def _jsonable(obj):
    try:
        json.dumps(obj)
        return obj
    except TypeError:
        if isinstance(obj, dict):
            return {str(k): _jsonable(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [_jsonable(v) for v in obj]
        return repr(obj)


def hf_lm(model_path, batch_size: int, *, offline: bool):
    """lm-eval's HF backend on one saved model, as every lm-eval path of the study loads it: bf16 on a GPU, fp32 on
    CPU (bf16 is ~100x slower there), the hub switched off when the data is local (`offline`)."""
    import torch
    from lm_eval.models.huggingface import HFLM

    if offline:
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not (Path(model_path) / "config.json").is_file():
        raise FileNotFoundError(f"{model_path}: no config.json (not a saved model folder)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return HFLM(pretrained=str(model_path), dtype="bfloat16" if device == "cuda" else "float32", device=device,
                batch_size=batch_size)


def run_leaderboard(*, model_path: str, params: dict, out_json: str, out_samples: str, out_raw: str,
                    seed: int = 0, model_id: str = "") -> dict:
    """Evaluate one model on the configured tasks; write the score, lm-eval's raw output and per-item samples."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from ..io import atomic_path, write_json
    from ..provenance import package_version

    lm = hf_lm(model_path, params["batch_size"], offline=params["source"] == "local")
    tasks, raw, samples = {}, {}, []
    with tempfile.TemporaryDirectory(prefix="gamealign-lmeval-") as tmp:
        names = write_task_yamls(tmp, params)
        manager = TaskManager(include_path=tmp, include_defaults=False)
        for task, name in names.items():
            metric, shots = LEADERBOARD[task]
            t0 = time.time()
            res = simple_evaluate(model=lm, tasks=[name], task_manager=manager, limit=params.get("limit"),
                                  log_samples=True, bootstrap_iters=params["bootstrap_iters"], random_seed=seed,
                                  numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)
            seconds = time.time() - t0
            row = res["results"][name]
            n_items = sum(v.get("effective", 0) for k, v in res.get("n-samples", {}).items())
            stderr = row.get(metric.replace(",", "_stderr,", 1))
            tasks[task] = {"metric": metric.split(",")[0] + ("" if metric.endswith(",none") else f" ({metric.split(',')[1]})"),
                           "value": float(row[metric]),
                           "stderr": float(stderr) if isinstance(stderr, (int, float)) else None,
                           "num_fewshot": shots, "n_items": n_items, "seconds": round(seconds, 2),
                           "lm_eval_task": name, "substitution": SUBSTITUTIONS.get(task) if params["source"] == "local" else None}
            raw[task] = _jsonable({k: res.get(k) for k in ("results", "groups", "configs", "versions", "n-shot",
                                                           "higher_is_better", "n-samples")})
            key, filt = metric.split(",")
            for sub, items in (res.get("samples") or {}).items():
                for item in items:
                    if item.get("filter", "none") != filt:  # lm-eval logs each item once per filter
                        continue
                    samples.append(_jsonable({"task": task, "subtask": sub, "doc_id": item.get("doc_id"),
                                              "filter": filt, "target": item.get("target"),
                                              "resps": item.get("filtered_resps"), key: item.get(key)}))
    values = [t["value"] for t in tasks.values()]
    result = {"benchmark": "open_llm", "model_id": model_id, "model": str(model_path),
              "average": sum(values) / len(values), "n_tasks": len(values), "complete": len(values) == len(LEADERBOARD),
              "tasks": tasks, "source": params["source"],
              "data": str(Path(params["data_dir"]).resolve()) if params["source"] == "local" else "hub",
              "limit": params.get("limit"), "lm_eval_version": package_version("lm-eval") or "unknown",
              "raw_file": str(out_raw), "samples_file": str(out_samples)}
    with atomic_path(out_samples) as tmp_file:
        with open(tmp_file, "w") as fh:
            for s in samples:
                fh.write(json.dumps(s, sort_keys=True) + "\n")
    write_json(out_raw, raw)
    write_json(out_json, result)
    return result
