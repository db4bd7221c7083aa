"""The models a study makes, which of them each benchmark scores, and where their files lie.

One definition for everything that names a study's models: the Snakemake rules (workflow/rules/*.smk), and the
scripts that read a study's results folder without Snakemake — `bench/partial_report.py` (the report of a study cut
short) and `bench/gpu_study.sh` (which scores to run first). A model id is "sft" (the shared SFT model) or
"{rep}{algorithm}-r{round}", where `rep` is "" in a one-seed study and "seed<N>/" in one with several
(`gamealign.config.replicate_dir`). Paths start at `root`, the study's results folder (`study.results_dir` unless a
caller reads a copy of it elsewhere).
"""

from __future__ import annotations

from .config import replicate_dir, study_seeds
from .evaluation.registry import BENCHMARKS


def replicates(cfg: dict) -> list[str]:
    """Every replicate's path part ("" alone for a one-seed study)."""
    return [replicate_dir(cfg, s) for s in study_seeds(cfg)]


def rep_seed(cfg: dict, rep: str) -> int:
    """The seed of replicate `rep` (from which its sampling, annotation, training and evaluation seeds derive)."""
    return int(rep[len("seed"):-1]) if rep else study_seeds(cfg)[0]


def model_ids(cfg: dict) -> list[str]:
    """The evaluated models: the SFT model (shared), then every replicate's algorithm × round."""
    rounds = range(1, int(cfg["study"]["rounds"]) + 1)
    return ["sft"] + [f"{rep}{a}-r{r}" for rep in replicates(cfg) for a in cfg["algorithms"] for r in rounds]


def split_model_id(model_id: str) -> tuple[str, str, int]:
    """(rep, algorithm, round) of a model id ("sft" -> ("", "sft", 0))."""
    if model_id == "sft":
        return "", "sft", 0
    rep, _, name = model_id.rpartition("/")
    algo, r = name.rsplit("-r", 1)
    return (rep + "/" if rep else ""), algo, int(r)


def benchmark_model_ids(cfg: dict, bench: str) -> list[str]:
    """The models benchmark `bench` scores: evaluation.<bench>.models where it has one (alpaca_eval, arena_hard,
    open_llm: all | sft_and_last | sft), every model otherwise (heldout and ifeval: the report's round curves)."""
    which = cfg["evaluation"].get(bench, {}).get("models", "all")
    if which == "all":
        return model_ids(cfg)
    last = int(cfg["study"]["rounds"])
    return ["sft"] + ([f"{rep}{a}-r{last}" for rep in replicates(cfg) for a in cfg["algorithms"]]
                      if which == "sft_and_last" else [])


def model_dir(cfg: dict, rep: str, algo: str, r: int, root: str | None = None) -> str:
    """The policy after round r of `algo` in replicate `rep` (round 0, or algo "sft": the shared SFT model)."""
    root = root or cfg["study"]["results_dir"]
    return f"{root}/sft/model" if int(r) == 0 or algo == "sft" else f"{root}/runs/{rep}{algo}/r{int(r)}/model"


def score_path(cfg: dict, model_id: str, bench: str, root: str | None = None) -> str:
    """Where model `model_id`'s score on benchmark `bench` is written."""
    return f"{root or cfg['study']['results_dir']}/eval/{model_id}/{BENCHMARKS[bench].score_file}"


def game_dirs(cfg: dict, root: str | None = None) -> list[str]:
    """The preference-game track's folders, one per game family (none when the track is off)."""
    game = cfg["game"]
    return [f"{root or cfg['study']['results_dir']}/game/{fam}" for fam in (game["families"] if game["enabled"] else [])]


def report_index(cfg: dict, root: str | None = None) -> dict:
    """What the report reads (`gamealign report --index`): every model's manifest and every score file, by seed,
    algorithm and round (seed and manifest None for the shared SFT model), and the game track's folders."""
    models = [{"seed": None, "algorithm": "sft", "round": 0, "manifest": None}]
    for model_id in model_ids(cfg)[1:]:
        rep, a, r = split_model_id(model_id)
        models.append({"seed": rep_seed(cfg, rep), "algorithm": a, "round": r,
                       "manifest": f"{model_dir(cfg, rep, a, r, root)}/manifest.json"})
    scores = []
    for bench in cfg["evaluation"]["benchmarks"]:
        for model_id in benchmark_model_ids(cfg, bench):
            rep, a, r = split_model_id(model_id)
            scores.append({"seed": None if model_id == "sft" else rep_seed(cfg, rep), "algorithm": a, "round": r,
                           "benchmark": bench, "path": score_path(cfg, model_id, bench, root)})
    return {"models": models, "scores": scores, "games": game_dirs(cfg, root)}
