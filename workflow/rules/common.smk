# Paths and small helpers shared by the rules: where each artifact of DESIGN.md §3 lives.
import json

from gamealign.algorithms import REGISTRY
from gamealign.config import derive_seed, evaluation_judge

R = config["study"]["results_dir"]
ROUNDS = config["study"]["rounds"]
ALGOS = list(config["algorithms"])
SEED = config["study"]["seed"]
THREADS = config["study"]["threads_per_job"]
GPUS = config["study"]["gpus_per_job"]
TRAIN_GPUS = max(GPUS, config["train"]["num_processes"]) if GPUS else 0
SFT = f"{R}/sft/model"
SYSTEM = config["model"]["system_prompt"]

wildcard_constraints:
    algo="[a-z_]+",
    round=r"\d+",
    model_id=r"sft|[a-z_]+-r\d+",


def jq(obj):
    """A config slice as one JSON string (pass with {params.x:q})."""
    return json.dumps(obj, sort_keys=True)


def online(algo):
    return REGISTRY[algo].online


def model_dir(algo, r):
    """The policy after round r of `algo` (round 0 is the SFT model)."""
    return SFT if int(r) == 0 else f"{R}/runs/{algo}/r{int(r)}/model"


def self_play(algo):
    """Offline algorithms that still sample (unlabeled) from their own iterate each round (SPAC)."""
    return algo in REGISTRY and getattr(REGISTRY[algo], "self_play", False)


def sample_prompt_round(algo, r):
    """Which round's prompts a sampling job uses: self-play samples match the offline data's prompts."""
    return 1 if self_play(algo) else int(r)


def data_dir(algo, r):
    """Where algo's round-r training data lives: round 1 and offline algorithms share runs/shared/r1."""
    return f"{R}/runs/shared/r1" if int(r) == 1 or not online(algo) else f"{R}/runs/{algo}/r{int(r)}"


def data_round(algo, r):
    return 1 if data_dir(algo, r).endswith("/shared/r1") else int(r)


def selfplay_samples(algo, r):
    """Round r's unlabeled self-play samples from π_{r-1} (round 1: the shared SFT samples)."""
    return f"{R}/runs/shared/r1/samples.jsonl" if int(r) == 1 else f"{R}/runs/{algo}/r{int(r)}/samples.jsonl"


def plan_seed(algo, r):
    """The seed of algo's comparison plan for its round-r data (WIND's pairing, INPO's bracket draws)."""
    return derive_seed(SEED, "plan", algo, data_round(algo, r))


def annotation_plans(who, r):
    """The comparison plans an annotation job runs (their union is judged): an online algorithm's own plan
    for its round r >= 2; for the shared round-1 data, the plan of every algorithm that reads it."""
    readers = ALGOS if who == "shared" else [who]     # round 1: online ones' first round, offline ones' data
    plans = [{"plan": REGISTRY[a].comparison_plan(config["algorithms"][a]), "seed": plan_seed(a, r)} for a in readers]
    if any(p["plan"] == "all" for p in plans):
        return [{"plan": "all", "seed": 0}]      # every pair: the others' pairs are among them
    return sorted(plans, key=lambda p: (p["plan"], p["seed"]))


def all_model_ids():
    return ["sft"] + [f"{a}-r{r}" for a in ALGOS for r in range(1, ROUNDS + 1)]


def model_for_id(model_id):
    if model_id == "sft":
        return SFT
    algo, r = model_id.rsplit("-r", 1)
    return model_dir(algo, r)


def sys_prompt_arg():
    return f"--system-prompt {json.dumps(SYSTEM)}" if SYSTEM else ""


def train_launcher():
    """`gamealign`, or `accelerate launch ... -m gamealign` when training runs on several processes."""
    t = config["train"]
    if t["num_processes"] == 1:
        return "gamealign"
    how = f"--config_file {t['accelerate_config']}" if t["accelerate_config"] else "--multi_gpu"
    # port 0: accelerate picks a free one, so several training jobs on one machine do not collide
    return (f"accelerate launch {how} --num_processes {t['num_processes']} --num_machines 1 --main_process_port 0 "
            "-m gamealign")


def backend_args():
    """The generation backend options of `gamealign sample` (sampling.backend and its vLLM settings)."""
    s = config["sampling"]
    return (f"--backend {s['backend']} --tensor-parallel-size {s['tensor_parallel_size']} "
            f"--gpu-memory-utilization {s['gpu_memory_utilization']}")
