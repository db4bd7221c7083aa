"""Load and validate a study config against workflow/schemas/config.schema.yaml.

The schema is the single source of truth for options and defaults: `validate_config` fills every
default the schema declares and raises `ConfigError` naming the offending key (dotted path) for the
first problem it finds, before any computation starts.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config that disagrees with the schema or names a missing file."""


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _with_defaults(Draft202012Validator)


def load_schema(path: str | os.PathLike | None = None) -> dict:
    with open(path or SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def _describe(error, prefix: tuple = ()) -> str:
    path = list(prefix) + list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return (f"config key '{_key(path + extra[:1])}': unknown key "
                f"(allowed under '{_key(path)}': {', '.join(allowed)})")
    if error.validator == "type":
        return (f"config key '{_key(path)}': expected {error.validator_value}, "
                f"got {type(error.instance).__name__} {error.instance!r}")
    return f"config key '{_key(path)}': {error.message}"


def validate_config(config: dict, schema: dict | None = None, check_paths: bool = True) -> dict:
    """Validate `config` in place (defaults filled) and return it; raise ConfigError naming the key."""
    if not isinstance(config, dict):
        raise ConfigError(f"config must be a mapping, got {type(config).__name__}")
    schema = schema or load_schema()
    # game.algorithms: an hparam the user leaves out takes the game-scale default (schema game.algorithms.default),
    # not the LLM study's (SPPO's η = 1000 is for sequence log-probs, not for P ∈ [0, 1])
    game_given = {a: dict(hp or {}) for a, hp in ((config.get("game") or {}).get("algorithms") or {}).items()} \
        if isinstance((config.get("game") or {}).get("algorithms"), dict) else None
    validator = _DefaultFillingValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise ConfigError(_describe(errors[0]))
    if game_given is not None:
        game_defaults = schema["properties"]["game"]["properties"]["algorithms"]["default"]
        for algo, hp in game_given.items():
            config["game"]["algorithms"][algo] = {**config["game"]["algorithms"][algo], **game_defaults.get(algo, {}), **hp}
    # evaluation.judge, when given, is a whole judge section: the same schema (and defaults) as `judge`
    eval_judge = config["evaluation"].get("judge")
    if eval_judge is not None:
        sub = _DefaultFillingValidator(schema["properties"]["judge"])
        errors = sorted(sub.iter_errors(eval_judge), key=lambda e: (len(e.absolute_path), e.path))
        if errors:
            raise ConfigError(_describe(errors[0], prefix=("evaluation", "judge")))
    _check_combinations(config)
    if check_paths:
        _check_paths(config)
    return config


def _check_combinations(config: dict) -> None:
    from .evaluation.registry import BENCHMARKS, of_kind

    benches = config["evaluation"]["benchmarks"]
    if BENCHMARKS[benches[0]].kind != "judged":
        raise ConfigError("config key 'evaluation.benchmarks': the first benchmark is the report's primary and must "
                          f"be a win-rate benchmark ({', '.join(of_kind('judged'))}), not {benches[0]}")
    train = config["train"]
    if train["batch_size"] % train["num_processes"]:
        raise ConfigError(f"config key 'train.batch_size': {train['batch_size']} is not a multiple of "
                          f"train.num_processes ({train['num_processes']})")
    for section in ("algorithms", "game.algorithms"):
        wind = (config["game"]["algorithms"] if section == "game.algorithms" else config["algorithms"]).get("wind")
        if wind is not None and wind["eta"] * wind["beta"] > 1:
            raise ConfigError(f"config key '{section}.wind.eta': η·β = {wind['eta']} × {wind['beta']} = "
                              f"{wind['eta'] * wind['beta']:g} > 1; WIND's update π_t^(1−ηβ) π_ref^(ηβ) needs ηβ ≤ 1")
    if config["evaluation"]["protocol"] == "official" and evaluation_judge(config)["name"] != "http":
        raise ConfigError("config key 'evaluation.protocol': official needs the http judge (evaluation.judge or judge "
                          "with name http and http.base_url): the benchmarks' own annotators ask an endpoint")
    off = config["offline_data"]
    if off["source"] != "annotated" and not off.get("path"):
        raise ConfigError(f"config key 'offline_data.path': required when offline_data.source is '{off['source']}'")
    game = config["game"]
    if game["enabled"] and "cyclic" in game["families"] and game["responses"] % 2 == 0:
        raise ConfigError(f"config key 'game.responses': the cyclic family needs an odd number, got {game['responses']}")
    _check_judge(config["judge"], "judge")
    if config["evaluation"].get("judge") is not None:
        _check_judge(config["evaluation"]["judge"], "evaluation.judge")


def _schema_node(dotted: str) -> dict:
    node = load_schema()
    for part in dotted.split("."):
        node = node["properties"][part]
    return node


def schema_default(dotted: str):
    """The schema's default of a setting, e.g. "sampling.backend" (the CLI takes its defaults from here only)."""
    return copy.deepcopy(_schema_node(dotted)["default"])


def schema_choices(dotted: str) -> list:
    """The schema's allowed values of an enum setting, e.g. "sampling.backend" (the CLI's choices for it)."""
    return list(_schema_node(dotted)["enum"])


def fill_section(section: str, values: dict) -> dict:
    """A copy of config section `section` with the schema's defaults filled in; ConfigError names a bad key."""
    schema = load_schema()["properties"][section]
    out = copy.deepcopy(values)
    errors = sorted(_DefaultFillingValidator(schema).iter_errors(out), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise ConfigError(_describe(errors[0], prefix=(section,)))
    return out


# Settings that cannot change a result. The rules keep them out of `params` (Snakemake reruns a job whose params
# changed) and hand them to the command separately (`--runtime`), which merges them back. Dotted: nested keys.
RUNTIME_KEYS = {
    "sampling": ("gpu_memory_utilization",),
    "judge": ("http.timeout_s", "http.max_retries", "http.backoff_s", "http.api_key_env", "http.concurrency"),
    "train": ("checkpoint_every", "logprob_chunk", "report_to"),
}


def split_runtime(section: str, values: dict) -> tuple[dict, dict]:
    """(what determines a stage's outputs, its runtime knobs) of config section `section` (RUNTIME_KEYS)."""
    determining, runtime = copy.deepcopy(values), {}
    for dotted in RUNTIME_KEYS.get(section, ()):
        *parents, key = dotted.split(".")
        src, dst = determining, runtime
        for p in parents:
            if not isinstance(src.get(p), dict):
                break
            src, dst = src[p], dst.setdefault(p, {})
        else:
            if key in src:
                dst[key] = src.pop(key)
    return determining, runtime


def without_runtime(config: dict) -> dict:
    """The whole config less its runtime knobs: what the report hashes and records (a timeout changes no result)."""
    out = copy.deepcopy(config)
    for section in RUNTIME_KEYS:
        out[section] = split_runtime(section, out[section])[0]
    if (out.get("evaluation") or {}).get("judge"):
        out["evaluation"]["judge"] = split_runtime("judge", out["evaluation"]["judge"])[0]
    return out


def merge_runtime(params: dict, runtime: dict | None) -> dict:
    """`params` with the runtime knobs of `split_runtime` put back (nested dicts merged)."""
    out = copy.deepcopy(params)
    for key, value in (runtime or {}).items():
        out[key] = merge_runtime(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def study_seeds(config: dict) -> list[int]:
    """The replicate seeds: `study.seeds`, or [study.seed] when unset."""
    return list(config["study"].get("seeds") or [config["study"]["seed"]])


def replicate_dir(config: dict, seed: int) -> str:
    """The path part of a replicate under runs/ and eval/: "" for a one-seed study (the files stay where they
    always were), "seed<N>/" when there are several."""
    return "" if len(study_seeds(config)) == 1 else f"seed{seed}/"


def evaluation_judge(config: dict) -> dict:
    """The judge of every win-rate benchmark: `evaluation.judge`, or the annotator (`judge`) when unset."""
    return config["evaluation"].get("judge") or config["judge"]


def _check_judge(judge: dict, key: str) -> None:
    if judge["name"] in ("reward_model", "pairwise_model") and not judge.get("path"):
        raise ConfigError(f"config key '{key}.path': required when {key}.name is '{judge['name']}'")
    if judge["name"] == "http" and not judge["http"].get("base_url"):
        raise ConfigError(f"config key '{key}.http.base_url': required when {key}.name is 'http'")


def _check_paths(config: dict) -> None:
    model = config["model"]
    if model["source"] in ("local", "gguf"):
        path = model.get("path")
        if not path:
            raise ConfigError(f"config key 'model.path': required when model.source is '{model['source']}'")
        if not Path(path).exists():
            raise ConfigError(f"config key 'model.path': no such file or directory: {path}")
        if model["source"] == "local" and not (Path(path) / "config.json").exists():
            raise ConfigError(f"config key 'model.path': {path} is not an HF checkpoint (no config.json)")
    if model["source"] == "hub" and not model.get("hub_id"):
        raise ConfigError("config key 'model.hub_id': required when model.source is 'hub'")
    prompts = config["prompts"]
    if prompts["source"] in ("file", "hf") and not prompts.get("path"):
        raise ConfigError(f"config key 'prompts.path': required when prompts.source is '{prompts['source']}'")
    if prompts["source"] == "file" and not Path(prompts["path"]).exists():
        raise ConfigError(f"config key 'prompts.path': no such file: {prompts['path']}")
    for key, judge in (("judge", config["judge"]), ("evaluation.judge", config["evaluation"].get("judge"))):
        if judge and judge["name"] in ("reward_model", "pairwise_model") and not (Path(judge["path"]) / "config.json").exists():
            raise ConfigError(f"config key '{key}.path': {judge['path']} is not a saved HF model (no config.json)")


def load_config(path: str | os.PathLike, check_paths: bool = True) -> dict:
    try:
        with open(path) as fh:
            config = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return validate_config(config, check_paths=check_paths)


def config_hash(obj: Any) -> str:
    """Stable sha256 of a JSON-serialisable config slice (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def derive_seed(master: int, *tags) -> int:
    """A stage's seed: a stable function of the master seed and its tags (e.g. 'sample', 'inpo', 2)."""
    blob = json.dumps([master, *[str(t) for t in tags]]).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big")
