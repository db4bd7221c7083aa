# Paths and small helpers shared by the rules: where each artifact of DESIGN.md §3 lives.
import json

from gamealign import study
from gamealign.algorithms import REGISTRY
from gamealign.config import derive_seed, evaluation_judge, split_runtime, without_runtime

R = config["study"]["results_dir"]
ROUNDS = config["study"]["rounds"]
ALGOS = list(config["algorithms"])
SEED = config["study"]["seed"]
# Replicates (study.seeds): each seed's runs and evaluations live under runs/{rep} and eval/{rep}, where the
# `rep` wildcard is "" for a one-seed study (paths as they always were) or "seed<N>/".
REPS = study.replicates(config)
THREADS = config["study"]["threads_per_job"]
GPUS = config["study"]["gpus_per_job"]
TRAIN_GPUS = max(GPUS, config["train"]["num_processes"]) if GPUS else 0
SFT = f"{R}/sft/model"
SYSTEM = config["model"]["system_prompt"]

wildcard_constraints:
    rep=r"(seed\d+/)?",
    shard=r"\d+",
    algo="[a-z_]+",
    round=r"\d+",
    model_id=r"sft|(seed\d+/)?[a-z_]+-r\d+",


def rep_seed(rep):
    """The seed of replicate `rep` (from which its sampling, annotation, training and evaluation seeds derive)."""
    return study.rep_seed(config, rep)


def jq(obj):
    """A config slice as one JSON string (pass with {params.x:q})."""
    return json.dumps(obj, sort_keys=True)


def determining(section, values=None):
    """The part of a config section that determines a stage's outputs: what its rules' `params` hold."""
    return split_runtime(section, config[section] if values is None else values)[0]


def only(values, *keys):
    """The listed keys of a config section (those a rule's command reads)."""
    return {k: values[k] for k in keys if k in values}


# Runtime knobs (gamealign.config.RUNTIME_KEYS: timeouts, retries, memory fractions, checkpoint cadence) reach the
# commands as these module-level strings, not as params: Snakemake formats shell commands with the Snakefile's
# globals too, and a global is no rerun trigger — changing one reruns nothing.
GPU_MEMORY = config["sampling"]["gpu_memory_utilization"]
SHARDS = config["sampling"]["shards"]
# train.report_to's trackers write here, one run per algorithm x round (a runtime knob: no rerun when it changes)
TRACKING = f"{R}/tracking"
# model.trust_remote_code reaches every job that loads a checkpoint (sampling, training, evaluation generation)
TRUST = "--trust-remote-code" if config["model"]["trust_remote_code"] else ""
JUDGE_RUNTIME = jq(split_runtime("judge", config["judge"])[1])
EVAL_JUDGE_RUNTIME = jq(split_runtime("judge", evaluation_judge(config))[1])
TRAIN_RUNTIME = jq(split_runtime("train", config["train"])[1])


def online(algo):
    return REGISTRY[algo].online


def model_dir(rep, algo, r):
    """The policy after round r of `algo` in replicate `rep` (round 0 is the shared SFT model)."""
    return study.model_dir(config, rep, algo, r)


def self_play(algo):
    """Offline algorithms that still sample (unlabeled) from their own iterate each round (SPAC)."""
    return algo in REGISTRY and getattr(REGISTRY[algo], "self_play", False)


def sample_prompt_round(algo, r):
    """Which round's prompts a sampling job uses: self-play samples match the offline data's prompts."""
    return 1 if self_play(algo) else int(r)


def data_round(algo, r):
    """The round whose data algo trains on in round r: 1 for round 1 and for offline algorithms."""
    return 1 if int(r) == 1 or not online(algo) else int(r)


# offline_data.source file / hf: the offline algorithms' fixed pairs come from a preference dataset, written in the
# study's formats under offline/ (rule offline_data), instead of the annotated round-1 samples
OFFLINE_DATA = config["offline_data"]["source"] != "annotated"
OFFLINE = f"{R}/offline"


def from_dataset(algo):
    return OFFLINE_DATA and not online(algo)


def data_dir(rep, algo, r):
    """Where algo's round-r training data lives: round 1 and offline algorithms share runs/{rep}shared/r1 (or the
    imported dataset under offline/)."""
    if from_dataset(algo):
        return OFFLINE
    return f"{R}/runs/{rep}shared/r1" if data_round(algo, r) == 1 else f"{R}/runs/{rep}{algo}/r{int(r)}"


def data_prompts(algo, r):
    """The prompts file of algo's round-r training data."""
    return f"{OFFLINE}/prompts.jsonl" if from_dataset(algo) else f"{R}/prompts/train_r{data_round(algo, r)}.jsonl"


def selfplay_samples(rep, algo, r):
    """Round r's unlabeled self-play samples from π_{r-1} (round 1: the shared SFT samples, or with a dataset
    the SFT model's own samples on its prompts)."""
    if int(r) == 1 and not from_dataset(algo):
        return f"{R}/runs/{rep}shared/r1/samples.jsonl"
    return f"{R}/runs/{rep}{algo}/r{int(r)}/samples.jsonl"


def plan_seed(rep, algo, r):
    """The seed of algo's comparison plan for its round-r data (WIND's pairing, INPO's bracket draws)."""
    return derive_seed(rep_seed(rep), "plan", algo, data_round(algo, r))


def annotation_plans(rep, who, r):
    """The comparison plans an annotation job runs (their union is judged): an online algorithm's own plan
    for its round r >= 2; for the shared round-1 data, the plan of every algorithm that reads it."""
    readers = [a for a in ALGOS if not from_dataset(a)] if who == "shared" else [who]   # round 1: who reads it
    plans = [{"plan": REGISTRY[a].comparison_plan(config["algorithms"][a]), "seed": plan_seed(rep, a, r)}
             for a in readers]
    if any(p["plan"] == "all" for p in plans):
        return [{"plan": "all", "seed": 0}]      # every pair: the others' pairs are among them
    return sorted(plans, key=lambda p: (p["plan"], p["seed"]))


# Model ids ("sft", "{rep}{algo}-r{round}") and which models each benchmark scores: gamealign.study, which the
# bench scripts that read a results folder without Snakemake (partial_report.py, gpu_study.sh) share.
def model_for_id(model_id):
    return model_dir(*study.split_model_id(model_id))


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
    """The generation backend options of `gamealign sample` that determine its output (sampling.backend, vLLM's
    tensor parallelism); the memory fraction is a runtime knob (SAMPLING_RUNTIME)."""
    s = config["sampling"]
    return f"--backend {s['backend']} --tensor-parallel-size {s['tensor_parallel_size']}"
