"""One trainer for every algorithm, on one process or several through `accelerate launch`.

Per round: build the algorithm's examples from the annotated groups; compute the frozen log-probs it
needs once (π_t with the starting weights, π_ref by loading the SFT model only when it differs from
π_t); then forward/backward on π_θ only. fp32 on CPU; bf16 autocast on CUDA. Writes the model,
`train_metrics.jsonl` and `manifest.json` into a temporary folder renamed into place on success; a
NaN/inf loss stops training and publishes nothing.

With N processes (DDP, FSDP or DeepSpeed through an accelerate config) each global batch of
`train.batch_size` examples is split across processes and each process's mean loss is weighted by
its share of the batch times N, so that the averaged gradient equals the one-process gradient of the
same batch; the frozen log-probs are computed on each process's shard and all-gathered. With
`train.micro_batch_size` each process's share runs as several forward/backward passes whose losses are
weighted by their share (accelerate's gradient accumulation: no all-reduce until the last pass), so the
step's gradient is unchanged while activation memory follows the micro-batch.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .algorithms import Group, get_algorithm
from .io import DataError, atomic_path, read_jsonl
from .logprobs import (PolicyLogprobs, TrunkCache, check_shared_prefix_support, padded_rows, rows_logprobs,
                       shared_prefix_rows, tokenize_pair)
from .models import load_model
from .sampling import chat_texts


class TrainingDiverged(FloatingPointError):
    pass


def examples_hash(examples) -> str:
    """A content hash of the training examples: prompt ids, responses and label fields, in order."""
    from .config import config_hash

    return config_hash([[ex.prompt_id, ex.responses, ex.fields] for ex in examples])


class Checkpoint:
    """Mid-round training state (`.<model dir>.ckpt/` beside the output), valid only for the same job.

    Holds the trainable weights, the optimizer state and the step reached; a restarted job whose
    identity (algorithm, hyperparameters, train config, seed, starting model, content hash of the
    training examples) matches
    resumes from it. It is written atomically and removed once the round's model is published.
    """

    def __init__(self, out_dir, identity: dict):
        from .config import config_hash

        out = Path(out_dir)
        self.path = out.with_name(f".{out.name}.ckpt")
        self.key = config_hash(identity)

    def load(self, model, opt):
        state_file = self.path / "state.pt"
        if not state_file.exists():
            return None
        state = torch.load(state_file, map_location="cpu", weights_only=False)
        if state.get("key") != self.key:
            print(f"ignoring stale checkpoint {self.path} (different job)", flush=True)
            return None
        model.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["optimizer"])
        return state["progress"]

    def save(self, model, opt, progress: dict):
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        weights = {k: v for k, v in model.state_dict().items() if k in trainable}
        with atomic_path(self.path, is_dir=True) as tmp:
            torch.save({"key": self.key, "model": weights, "optimizer": opt.state_dict(), "progress": progress},
                       tmp / "state.pt")

    def remove(self):
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)


def load_groups(samples_path, prefs_path=None, drop_truncated: bool = False, plan_seed: int = 0) -> list[Group]:
    """Samples (+ optional pairwise prefs) → one Group per prompt, responses ordered by k, each marked
    finished or not (finish_reason; rows without one count as finished). `drop_truncated` removes the
    responses cut at max_new_tokens (sampling.truncated: drop), with their rows and columns of P. A pair
    the prefs file lacks (its annotation plan did not judge it) is NaN in P: reading it raises.
    `plan_seed` is the annotation's comparison-plan seed (Group.plan_seed).

    A bad preference row raises DataError naming the file and the row.
    """
    rows = read_jsonl(samples_path, required=("prompt_id", "k", "text"))
    by_prompt: dict[str, dict[int, tuple[str, bool]]] = {}
    for r in rows:
        by_prompt.setdefault(r["prompt_id"], {})[int(r["k"])] = (r["text"], r.get("finish_reason", "stop") != "length")
    groups = {pid: Group(pid, [d[k][0] for k in sorted(d)], finished=[d[k][1] for k in sorted(d)], plan_seed=plan_seed)
              for pid, d in sorted(by_prompt.items())}
    if prefs_path is not None:
        _read_prefs(groups, prefs_path, samples_path)
    return [_drop_truncated(g) if drop_truncated else g for g in groups.values()]


def _read_prefs(groups: dict[str, Group], prefs_path, samples_path) -> None:
    """Fill each group's P from the pairwise rows; a bad row raises DataError naming the file and the row."""
    import pandas as pd

    try:
        prefs = pd.read_parquet(prefs_path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DataError(f"{prefs_path}: not a readable parquet file ({exc})") from exc
    missing = [c for c in ("prompt_id", "i", "j", "p") if c not in prefs.columns]
    if missing:
        raise DataError(f"{prefs_path}: missing column(s) {', '.join(missing)}")
    for g in groups.values():
        g.prefs = np.full((len(g.responses),) * 2, np.nan)
        np.fill_diagonal(g.prefs, 0.5)
    for row, (pid, i, j, p) in enumerate(prefs[["prompt_id", "i", "j", "p"]].itertuples(index=False), start=1):
        where = f"{prefs_path}: row {row}"
        if pid not in groups:
            raise DataError(f"{where}: prompt_id {pid} has no samples in {samples_path}")
        k = len(groups[pid].responses)
        if not (0 <= i < k and 0 <= j < k and i != j):
            raise DataError(f"{where}: response indices ({i}, {j}) out of range for {k} samples")
        if not (np.isfinite(p) and 0.0 <= p <= 1.0):
            raise DataError(f"{where}: p = {p} is not a probability in [0, 1]")
        groups[pid].prefs[i, j] = p
        groups[pid].prefs[j, i] = 1.0 - p


def _drop_truncated(g: Group) -> Group:
    keep = [i for i, done in enumerate(g.finished) if done]
    prefs = None if g.prefs is None else g.prefs[np.ix_(keep, keep)]
    return Group(g.prompt_id, [g.responses[i] for i in keep], prefs, [True] * len(keep), plan_seed=g.plan_seed)


def _freeze_lower_layers(model, trainable_layers: int | None) -> int:
    if not trainable_layers:
        return sum(p.numel() for p in model.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    base = getattr(model, model.base_model_prefix)
    layers = base.layers[-trainable_layers:]
    for module in list(layers) + [base.norm]:
        for p in module.parameters():
            p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def add_lora(model, peft_cfg: dict):
    """`train.peft` through peft: LoRA adapters on `target_modules`, only they train (arXiv 2106.09685)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=peft_cfg["r"], lora_alpha=peft_cfg["alpha"], lora_dropout=peft_cfg["dropout"],
                        target_modules=list(peft_cfg["target_modules"]), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def use_liger_kernels(model) -> None:
    """Swap a Llama-family model's RMSNorm, SwiGLU MLP and rotary embedding for liger-kernel's fused Triton
    kernels (CUDA only), in place; the LM head is fused separately (`sequence_logprobs(fused=True)`)."""
    from liger_kernel.transformers import apply_liger_kernel_to_llama

    if model.config.model_type != "llama":
        raise ValueError(f"train.fused_kernels: liger kernels are wired for llama models, not {model.config.model_type!r}")
    apply_liger_kernel_to_llama(rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                fused_linear_cross_entropy=False, model=model)


def resolve_fused_kernels(setting, model, device) -> bool:
    """train.fused_kernels → whether this job uses liger-kernel (fused RMSNorm / SwiGLU / RoPE in the blocks and
    the fused LM head + log-softmax for every log-prob). `auto` (the default) turns them on where they can
    run — CUDA, a llama-family model, liger-kernel installed — and says why not otherwise; `true` requires
    them. They won the H100 training-step benchmark (bench/README.md); same log-probs within bf16 rounding."""
    if setting is False:
        return False
    if device.type != "cuda":
        reason = "no CUDA device (liger-kernel's kernels are Triton)"
    elif model.config.model_type != "llama":
        reason = f"model type {model.config.model_type!r} (liger kernels are wired for llama models here)"
    elif importlib.util.find_spec("liger_kernel") is None:
        reason = "liger-kernel is not installed (pip install 'gamealign[gpu]')"
    else:
        return True
    if setting == "auto":
        print(f"train.fused_kernels auto: off, {reason}", flush=True)
        return False
    raise ValueError(f"train.fused_kernels is true, but {reason}")


def compile_blocks(model) -> int:
    """torch.compile each decoder block in place (dynamic shapes); returns how many were compiled.

    Blocks share their code, so one compilation serves all of them (per mode: training and no-grad
    forwards compile separately)."""
    base = getattr(model, model.base_model_prefix)
    for layer in base.layers:
        layer.compile(dynamic=True)
    return len(base.layers)


def _charge(counts: dict | None, groups: list[Group]) -> dict | None:
    """The judge comparisons this algorithm is charged for: those its example building read (Group.read;
    all K(K−1)/2 for win-rate algorithms, ⌊K/2⌋ for WIND, the matches played for INPO's tournament), when the
    round's preference data is new to it (`charge_new_prefs`, set by the train stage); `judge_calls_cum`
    adds them to the previous round's. The annotation job's own count stays in `judge_comparisons_made`."""
    if counts is None or "charge_new_prefs" not in counts:
        return counts
    counts = dict(counts)
    rule_decided = counts.pop("charge_rule_decided", False)   # sampling.truncated: lose decided cut-vs-finished
    charged = sum(g.comparisons_read(rule_decided) for g in groups) if counts.pop("charge_new_prefs") else 0
    counts["judge_comparisons"] = charged
    counts["judge_calls_cum"] = counts.pop("judge_calls_cum_prev", 0) + charged
    return counts


def _round_manifest(algorithm, hparams, train_cfg, seed, init_model, ref_model, data_files, counts, timings,
                    **extra) -> dict:
    """The train stage's manifest (DESIGN.md §3), for a trained round and a skipped one alike."""
    from .provenance import manifest

    return manifest("train", {"algorithm": algorithm, "hparams": hparams, "train": train_cfg}, seed,
                    init_model=str(init_model), ref_model=str(ref_model), data_files=data_files or {}, counts=counts,
                    timings=timings, **extra)


def _write_metrics_and_manifest(folder: Path, metrics_rows: list[dict], info: dict) -> None:
    with open(folder / "train_metrics.jsonl", "w") as fh:
        for row in metrics_rows:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    (folder / "manifest.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def _publish_unchanged(algorithm, hparams, train_cfg, init_model, ref_model, out_dir, seed, counts, data_files,
                       reason: str, seconds: float) -> dict:
    """A round without usable examples: the starting model π_t, copied as this round's model, with
    `skipped: <reason>` in its manifest (the report marks the round) and an empty metrics file."""
    import shutil

    from accelerate import PartialState

    counts = dict(counts or {})
    counts.update(train_examples=0, train_steps=0, train_tokens=0, trainable_parameters=0)
    info = _round_manifest(algorithm, hparams, train_cfg, seed, init_model, ref_model, data_files, counts,
                           {"frozen_logprobs_s": 0.0, "train_s": 0.0, "total_s": round(seconds, 3)},
                           final_loss=None, skipped=reason)
    state = PartialState()
    print(f"{algorithm}: {reason}; publishing the starting model unchanged", flush=True)
    if state.is_main_process:
        with atomic_path(out_dir, is_dir=True) as tmp:
            for f in Path(init_model).iterdir():
                if f.is_file() and f.name not in ("manifest.json", "train_metrics.jsonl"):
                    shutil.copy2(f, tmp / f.name)
            _write_metrics_and_manifest(tmp, [], info)
    state.wait_for_everyone()
    return info


def _encode(tokenizer, examples, prompt_text: dict, max_length: int, finished: dict | None = None):
    """Token ids of every example's responses; `finished[(prompt_id, text)]` False leaves a response's end
    token off (it was cut at max_new_tokens). Looked up by text, since algorithms build examples from
    response texts: a cut and a finished response of one prompt cannot share a text (the finished one would
    have ended before the limit with the same tokens)."""
    finished = finished or {}
    return [[tokenize_pair(tokenizer, prompt_text[ex.prompt_id], y, max_length, finished.get((ex.prompt_id, y), True))
             for y in ex.responses] for ex in examples]


def example_rows(encoded_examples, pad_id, device, shared_prefix: bool):
    """The `Rows` of a few encoded examples, their sequences in example order: one padded row per sequence, or
    with `shared_prefix` one row per example holding its common prompt once (logprobs.shared_prefix_rows)."""
    if shared_prefix:
        return shared_prefix_rows(encoded_examples, pad_id, device)
    return padded_rows([seq for ex in encoded_examples for seq in ex], pad_id, device)


class TrunkMismatch(ValueError):
    pass


@torch.no_grad()
def frozen_logprobs(model, encoded, pad_id, batch_size, chunk, desc, accelerator=None, fused=False,
                    shared_prefix=False, trunk: TrunkCache | None = None, trunk_mode: str | None = None) -> torch.Tensor:
    """[n_examples, n_responses] log-probs under `model` (eval mode, no grad), `batch_size` sequences a pass.

    The sequences go through in order of length (less padding); with `shared_prefix` whole examples do, in
    training's row layout, so that at step 0 the policy's log-probs equal these up to float noise. With
    several processes each computes the examples rank, rank + N, ... and the rows are all-gathered.
    `trunk_mode` "capture" stores every row's trunk output in `trunk` (and checks, on the first batch, that the
    top blocks alone give this pass's log-probs: TrunkMismatch if not); "use" runs only the top blocks on the
    stored outputs. One process only, where a row is unit i: sequence e * n_responses + j, or example e.
    """
    model.eval()
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    mine = list(range(rank, len(encoded), world))
    n_resp = len(encoded[0]) if encoded else 0
    # the unit sorted and batched: a whole example (shared-prefix rows) or one sequence as an example of its own
    # (padded rows); unit i's log-probs are out's `size` entries from i * size
    units = [encoded[e] for e in mine] if shared_prefix else [[seq] for e in mine for seq in encoded[e]]
    size = n_resp if shared_prefix else 1
    order = sorted(range(len(units)), key=lambda i: sum(len(ids) for ids, _ in units[i]))
    per_pass = max(1, batch_size // max(1, size))
    out = torch.zeros(len(mine) * n_resp, dtype=torch.float32)
    for s in tqdm(range(0, len(order), per_pass), desc=desc, unit="batch", disable=rank != 0):
        idx = order[s:s + per_pass]
        rows = example_rows([units[i] for i in idx], pad_id, model.device, shared_prefix)
        if trunk_mode == "capture":
            with trunk.capture(model, idx):
                lp = rows_logprobs(model, rows, chunk, fused=fused)
            if s == 0:
                _check_trunk(model, rows, trunk.padded(idx, rows.input_ids.shape[1]), lp, chunk, fused)
        elif trunk_mode == "use":
            lp = rows_logprobs(model, rows, chunk, fused=fused, trunk=trunk.padded(idx, rows.input_ids.shape[1]))
        else:
            lp = rows_logprobs(model, rows, chunk, fused=fused)
        out.view(-1, size)[idx] = lp.float().cpu().view(len(idx), size)
    out = out.view(len(mine), n_resp)
    if world == 1:
        return out
    from accelerate.utils import gather_object

    gathered = gather_object([(e, out[k].tolist()) for k, e in enumerate(mine)])
    full = torch.zeros(len(encoded), n_resp, dtype=torch.float32)
    for e, row in gathered:
        full[e] = torch.tensor(row, dtype=torch.float32)
    return full


def _check_trunk(model, rows, trunk, full: torch.Tensor, chunk, fused) -> None:
    """The top blocks alone on the captured trunk outputs must give the full forward's log-probs of the same rows
    (they do for llama-family decoders; a model that rescales inputs_embeds would not)."""
    top = rows_logprobs(model, rows, chunk, fused=fused, trunk=trunk)
    if not torch.allclose(top.float(), full.float(), rtol=1e-3, atol=1e-2):
        diff = (top.float() - full.float()).abs().max().item()
        raise TrunkMismatch(f"train.cache_trunk: the top {trunk[0]} blocks on the cached trunk outputs do not reproduce "
                            f"the full forward's log-probs for model type {model.config.model_type!r} (max |diff| "
                            f"{diff:.3g}); set train.cache_trunk: false")


def lr_factor(step: int, total: int, warmup_steps: int, kind: str) -> float:
    """The learning-rate multiplier of optimizer step `step` (0-based) of `total`, as transformers'
    schedulers compute it (get_{constant,linear,cosine}_schedule_with_warmup, which the SPPO, INPO and
    iterative-DPO authors' trainers use): linear warm-up from 0 over `warmup_steps`, then constant, linear
    decay to 0, or half a cosine to 0. A pure function of the step, so a resumed round continues exactly."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    if kind == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total - warmup_steps)
    if kind == "linear":
        return max(0.0, 1.0 - progress)
    if kind == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    raise ValueError(f"train.lr_scheduler: unknown schedule {kind!r} (constant, linear, cosine)")


def batch_schedule(lengths: list[int], batch_size: int, rng: random.Random, group_by_length: bool) -> list[list[int]]:
    """One epoch's batches of example indices: a shuffle, or with `group_by_length` a shuffle whose
    windows of 16 batches are sorted by length (less padding; HF's length-grouped sampling idea), the
    batches themselves then shuffled."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        window = batch_size * 16
        order = [i for s in range(0, len(order), window)
                 for i in sorted(order[s:s + window], key=lambda i: -lengths[i])]
    batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def _forward_loss(policy, algo, accelerator, seqs_by_example, frozen, fields, pad_id, device, shared_prefix=False,
                  trunk: TrunkCache | None = None, example_ids: list[int] | None = None):
    """(mean loss, metrics, tokens) of one pass over a few examples: the policy's log-probs of every
    response, the frozen log-probs and label fields as the algorithm's batch tensors. `tokens` counts each
    sequence's prompt and response tokens whatever the row layout, so the accounting does not depend on it.
    With `trunk` (and the examples' indices) only the policy's top blocks run, on the cached trunk outputs."""
    n_resp = len(seqs_by_example[0])
    rows = example_rows(seqs_by_example, pad_id, device, shared_prefix)
    top = None
    if trunk is not None:   # the cache's rows: examples (shared_prefix) or their sequences
        ids = example_ids if shared_prefix else [e * n_resp + j for e in example_ids for j in range(n_resp)]
        top = trunk.padded(ids, rows.input_ids.shape[1])
    with accelerator.autocast():
        logp = policy(*rows, trunk=top).float().view(len(seqs_by_example), n_resp)
    ntok = torch.bincount(rows.seq, minlength=rows.n_seqs).view(len(seqs_by_example), n_resp).float()
    batch = {"logp": logp, "ntok": ntok}
    for key, tensor in frozen.items():
        batch[key] = tensor.to(device)
    for f, values in fields.items():
        batch[f] = torch.tensor(values, dtype=torch.float32, device=device)
    loss, extra = algo.loss(batch)
    return loss, extra, sum(len(ids) for ex in seqs_by_example for ids, _ in ex)


def make_accelerator(log_with: str | None = None, project_dir: str | None = None):
    """The Accelerator of a training job: bf16 autocast on CUDA, fp32 on CPU; `log_with` one of accelerate's
    trackers (train.report_to), writing under `project_dir`.

    Without a GPU, `cpu=True` makes accelerate use gloo across the launched processes (MULTI_CPU);
    it would also turn a DeepSpeed launch into plain data parallel, so a DeepSpeed launch on CPU keeps
    accelerate's DeepSpeed path and asks for gloo (DeepSpeed's CPU accelerator), which is how ZeRO-3 is
    tested on CPU.
    """
    import os

    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    tracking = {"log_with": log_with, "project_dir": project_dir} if log_with else {}
    if torch.cuda.is_available():
        return Accelerator(mixed_precision="bf16", **tracking)
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return Accelerator(mixed_precision="no", kwargs_handlers=[InitProcessGroupKwargs(backend="gloo")], **tracking)
    return Accelerator(mixed_precision="no", cpu=True, **tracking)


def configure_deepspeed(ds_config: dict, micro_batch: int, max_grad_norm: float) -> None:
    """Fill the DeepSpeed config values accelerate takes from a prepared dataloader (none is prepared
    here: the trainer batches itself) and the gradient clipping, which DeepSpeed applies itself.

    `train_micro_batch_size_per_gpu` is bookkeeping for DeepSpeed (examples per pass); clipping must be
    `train.max_grad_norm`, so a config that pins another value is refused, naming the key.
    """
    if ds_config.get("train_micro_batch_size_per_gpu", "auto") == "auto":
        ds_config["train_micro_batch_size_per_gpu"] = micro_batch
    clip = ds_config.get("gradient_clipping", "auto")
    if clip == "auto":
        ds_config["gradient_clipping"] = max_grad_norm
    elif float(clip) != float(max_grad_norm):
        raise ValueError(f"the DeepSpeed config sets gradient_clipping = {clip} but train.max_grad_norm is "
                         f"{max_grad_norm}; remove that key from the accelerate config (or set it to auto)")


class RoundRecipe:
    """One training round of one algorithm, as a recipe (torchtune's shape): `setup` builds the examples and
    everything the steps need, `step` takes one optimizer step on one global batch, `train` runs the schedule
    with progress and mid-round checkpoints, `cleanup` writes the manifest and publishes the model. The loop
    reads top to bottom in `train_round`."""

    def __init__(self, *, algorithm: str, hparams: dict, train_cfg: dict, init_model: str, ref_model: str,
                 prompts_path: str, groups: list[Group], out_dir: str, seed: int,
                 selfplay_groups: list[Group] | None = None, counts: dict | None = None,
                 system_prompt: str | None = None, data_files: dict | None = None, trust_remote_code: bool = False,
                 run_name: str | None = None, tracking_dir: str | None = None):
        self.t_start = time.time()
        self.run_name, self.tracking_dir = run_name or algorithm, tracking_dir
        self.trust_remote_code = trust_remote_code
        self.algorithm, self.hparams, self.cfg, self.seed = algorithm, hparams, train_cfg, seed
        self.init_model, self.ref_model, self.out_dir = init_model, ref_model, out_dir
        self.prompts_path, self.groups, self.selfplay_groups = prompts_path, groups, selfplay_groups
        self.counts, self.system_prompt, self.data_files = counts, system_prompt, data_files
        self.algo = get_algorithm(algorithm, hparams)
        self.rng = random.Random(seed)
        torch.manual_seed(seed)

    # --- setup ------------------------------------------------------------------------------------
    def setup(self) -> bool:
        """Everything the steps need; False when the round has no examples (`publish_unchanged` then)."""
        self._setup_examples()
        if not self.examples:
            return False
        self._setup_models()
        self._setup_accelerator()
        self._setup_data()
        self._setup_trunk_cache()
        self._setup_frozen_logprobs()
        self._setup_optimizer()
        self._setup_schedule()
        self._setup_resume_and_prepare()
        return True

    def _setup_examples(self) -> None:
        for g in self.groups:
            g.read.clear()  # what this algorithm's example building reads is what it is charged for
        if hasattr(self.algo, "build_examples_with_offline"):
            if self.selfplay_groups is None:
                raise ValueError(f"{self.algorithm}: needs self-play samples (--selfplay)")
            self.examples = self.algo.build_examples_with_offline(self.groups, self.selfplay_groups, self.rng)
        else:
            self.examples = self.algo.build_examples(self.groups, self.rng)
        self.counts = _charge(self.counts, self.groups)

    def _setup_models(self) -> None:
        # Both models are loaded whole on every process before the Accelerator exists: the frozen
        # log-probs below run on each process's shard of the examples before `prepare`. Loaded after it,
        # transformers would give every process but the first all-zero weights under FSDP's
        # cpu_ram_efficient_loading (accelerate launch's default) and partitioned ones under ZeRO-3's
        # zero3_init_flag, so those log-probs would be silently wrong or fail.
        self.model, self.tokenizer = load_model(self.init_model, trust_remote_code=self.trust_remote_code)
        self.same_ref = Path(self.init_model).resolve() == Path(self.ref_model).resolve()
        self.ref = load_model(self.ref_model, trust_remote_code=self.trust_remote_code)[0] \
            if "ref" in self.algo.frozen and not self.same_ref else None

    def _setup_accelerator(self) -> None:
        cfg = self.cfg
        report_to = cfg.get("report_to", "none")
        self.tracking = report_to != "none"
        if self.tracking and not self.tracking_dir:
            raise ValueError(f"train.report_to: {report_to} needs a tracking folder (--tracking-dir)")
        self.accelerator = accelerator = make_accelerator(report_to if self.tracking else None, self.tracking_dir)
        self.world, self.is_main = accelerator.num_processes, accelerator.is_main_process
        self.sharded = accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")
        if cfg["batch_size"] % self.world:
            raise ValueError(f"train.batch_size ({cfg['batch_size']}) must be a multiple of the number of "
                             f"processes ({self.world})")
        local_bs = cfg["batch_size"] // self.world
        self.micro = min(cfg.get("micro_batch_size") or local_bs, local_bs)
        self.n_micro = -(-local_bs // self.micro)
        accelerator.gradient_accumulation_steps = self.n_micro
        self.device = accelerator.device
        self.model.to(self.device)
        self.fused = resolve_fused_kernels(cfg.get("fused_kernels", "auto"), self.model, self.device)
        if self.fused:  # before the frozen log-probs, so π_t's log-probs come from the same kernels as training's
            use_liger_kernels(self.model)
            if self.ref is not None:
                use_liger_kernels(self.ref)
        self.shared_prefix = bool(cfg.get("shared_prefix"))
        if self.shared_prefix:
            check_shared_prefix_support(self.model)
        if cfg.get("compile"):
            compile_blocks(self.model)

    def _setup_data(self) -> None:
        prompts = {p["id"]: p for p in read_jsonl(self.prompts_path, required=("id", "messages"))}
        missing = sorted({ex.prompt_id for ex in self.examples} - set(prompts))
        if missing:
            raise ValueError(f"{self.prompts_path}: no prompt for ids {missing[:3]}")
        ids = sorted(prompts)
        prompt_text = dict(zip(ids, chat_texts(self.tokenizer, [prompts[i] for i in ids], self.system_prompt)))
        finished = {(g.prompt_id, y): done for g in list(self.groups) + list(self.selfplay_groups or [])
                    for y, done in zip(g.responses, g.finished or [True] * len(g.responses))}
        self.encoded = _encode(self.tokenizer, self.examples, prompt_text, self.cfg["max_length"], finished)
        self.pad_id = self.tokenizer.pad_token_id
        self.fields = sorted({k for ex in self.examples for k in ex.fields})

    def _setup_trunk_cache(self) -> None:
        """train.cache_trunk: whether the frozen trunk's outputs are computed once (logprobs.TrunkCache). `auto`
        turns it on where it applies — train.trainable_layers set, one process — `true` requires it."""
        cfg, setting = self.cfg, self.cfg.get("cache_trunk", "auto")
        self.trunk = None
        if setting is False:
            return
        if not cfg.get("trainable_layers"):
            reason = "train.trainable_layers is not set (no frozen trunk)"
        elif cfg.get("peft"):
            reason = "train.peft trains adapters in every block"
        elif self.world > 1:
            reason = "several processes (each computes other examples' frozen log-probs than it trains on)"
        else:
            self.trunk = TrunkCache(cfg["trainable_layers"])
            return
        if setting is True:
            raise ValueError(f"train.cache_trunk is true, but {reason}")

    def _setup_frozen_logprobs(self) -> None:
        """log π_t and/or log π_ref of every response, once, with the starting weights (π_t = the starting
        model; π_ref is loaded only when it differs from it). With the trunk cache, the first pass over the
        starting model (or over π_ref, whose trunk is the same) captures the trunk's outputs and a later pass
        runs only the top blocks; an algorithm with no frozen log-probs gets a pass of its own to capture them."""
        t0, frozen_needed = time.time(), self.algo.frozen
        bs, chunk = self.cfg["batch_size"] * 2, self.cfg["logprob_chunk"]
        args = (self.encoded, self.pad_id, bs, chunk)
        kw = {"accelerator": self.accelerator, "fused": self.fused, "shared_prefix": self.shared_prefix}

        def run(model, desc):
            mode = None if self.trunk is None else "use" if self.trunk.hidden else "capture"
            if mode and model is not self.model and not TrunkCache.same_trunk(self.model, model, self.trunk.n_top):
                mode = None   # another trunk (π_ref not this run's SFT model): the full forward
            try:
                return frozen_logprobs(model, *args, desc, **kw, trunk=self.trunk, trunk_mode=mode)
            except TrunkMismatch as err:
                if self.cfg.get("cache_trunk", "auto") is True:
                    raise
                print(f"train.cache_trunk auto: off, {err}", flush=True)
                self.trunk = None
                return frozen_logprobs(model, *args, desc, **kw)

        self.frozen: dict[str, torch.Tensor] = {}
        prev = run(self.model, "log π_t") if (
            "prev" in frozen_needed or ("ref" in frozen_needed and self.same_ref)) else None
        if "prev" in frozen_needed:
            self.frozen["prev"] = prev
        if "ref" in frozen_needed:
            if self.same_ref:
                self.frozen["ref"] = prev
            else:
                self.frozen["ref"] = run(self.ref.to(self.device), "log π_ref")
                self.ref = None
        if self.trunk is not None and not self.trunk.hidden:
            run(self.model, "trunk")
        self.frozen_seconds = time.time() - t0

    def _setup_optimizer(self) -> None:
        # after the frozen log-probs: π_t's are the starting model's, with or without adapters (LoRA's B starts at 0)
        if self.cfg.get("peft"):
            if self.cfg.get("trainable_layers"):
                raise ValueError("train.peft and train.trainable_layers: choose one (LoRA trains only its adapters)")
            if self.sharded:
                raise ValueError(f"train.peft is not wired for {self.accelerator.distributed_type.name}: use one "
                                 "process or plain data parallel")
            self.model = add_lora(self.model, self.cfg["peft"])
            self.n_trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        else:
            self.n_trainable = _freeze_lower_layers(self.model, self.cfg.get("trainable_layers"))
        if self.cfg.get("gradient_checkpointing"):
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        params = [p for p in self.model.parameters() if p.requires_grad]
        # torch's fused AdamW (one kernel for the whole update) on a single CUDA process or plain data parallel:
        # +16-18% tokens/s of the H100 step with gradient checkpointing in two runs (bench/README.md; -6% in one run
        # without it); sharded runs keep foreach
        self.fused_adam = self.device.type == "cuda" and not self.sharded
        self.opt = torch.optim.AdamW(params, lr=self.cfg["lr"], weight_decay=0.0, fused=self.fused_adam or None)

    def _setup_schedule(self) -> None:
        """The whole schedule, fixed up front, so a resumed run replays exactly the same batches. The budget:
        train.epochs passes over the examples, or exactly train.steps_per_round optimizer steps (epochs repeat,
        each reshuffled, until the steps are filled; the last may be partial), which holds the number of updates
        equal across algorithms whose rounds yield different numbers of examples."""
        cfg, schedule, epoch = self.cfg, [], 0
        longest = [max(len(seq[0]) for seq in ex) for ex in self.encoded]
        steps_budget = cfg.get("steps_per_round")
        while len(schedule) < steps_budget if steps_budget else epoch < cfg["epochs"]:
            schedule += [(epoch, b) for b in batch_schedule(longest, cfg["batch_size"], self.rng,
                                                            cfg.get("group_by_length", False))]
            epoch += 1
        self.schedule = schedule[:steps_budget] if steps_budget else schedule
        # the schedule's learning rate is set on the optimizer before each step (not an LR scheduler object:
        # nothing to prepare, shard or checkpoint, and a resumed round gets the same rates)
        self.lr_kind = cfg.get("lr_scheduler", "constant")
        self.warmup_steps = math.ceil(cfg.get("warmup_ratio", 0.0) * len(self.schedule))

    def _setup_resume_and_prepare(self) -> None:
        accelerator, cfg = self.accelerator, self.cfg
        # the identity holds a content hash of the examples (responses, labels), so a rerun on changed data
        # never resumes a checkpoint of the old data
        self.ckpt = Checkpoint(self.out_dir, {"algorithm": self.algorithm, "hparams": self.hparams, "train": cfg,
                                              "seed": self.seed, "init_model": str(self.init_model),
                                              "n_examples": len(self.examples),
                                              "examples": examples_hash(self.examples)})
        self.step_i, self.train_tokens, self.metrics_rows = 0, 0, []
        # the Checkpoint holds whole weights and one optimizer state; under FSDP / ZeRO-3 each process
        # holds a shard of both, so neither a checkpoint written by the first process nor one loaded
        # before the sharding would be the job's state
        resumed = None if self.sharded else self.ckpt.load(self.model, self.opt)
        if resumed:
            self.step_i, self.train_tokens = resumed["step"], resumed["train_tokens"]
            self.metrics_rows = resumed["metrics"]
            print(f"resuming {self.algorithm} from its checkpoint at step {self.step_i}/{len(self.schedule)}",
                  flush=True)
        self.every = cfg.get("checkpoint_every") or 0
        if accelerator.distributed_type.name == "DEEPSPEED":
            configure_deepspeed(accelerator.state.deepspeed_plugin.deepspeed_config, self.micro, cfg["max_grad_norm"])
        # under LoRA the policy is the base model with its adapters injected (peft's wrapper hides the backbone
        # that sequence_logprobs runs); self.model stays the PeftModel, which saves the adapter and merges it
        net = self.model.get_base_model() if cfg.get("peft") else self.model
        self.policy, self.opt = accelerator.prepare(PolicyLogprobs(net, cfg["logprob_chunk"], self.fused), self.opt)
        # FSDP2 replaces the parameters by sharded ones, and accelerate clips FSDP gradients only when
        # given exactly the prepared module's parameters (frozen ones have no gradient and are skipped)
        self.clip_params = list(self.policy.parameters())
        if accelerator.gradient_accumulation_steps != self.n_micro:  # a DeepSpeed config can pin its own value
            raise ValueError(f"train.micro_batch_size ({self.micro}) needs {self.n_micro} micro-batches per step, but "
                             f"the accelerate config fixes gradient_accumulation_steps = "
                             f"{accelerator.gradient_accumulation_steps}; remove that key from the config (or set it "
                             "to auto)")
        if self.every and self.sharded:
            self.every = 0
            if self.is_main:
                print(f"train.checkpoint_every ignored under {accelerator.distributed_type.name}: mid-round "
                      "checkpoints hold unsharded state; a restarted job reruns the round", flush=True)

    # --- the loop ---------------------------------------------------------------------------------
    def _micro_batches(self, idx: list[int]) -> tuple[list[list[int]], list[float], float]:
        """This process's share of the global batch `idx` as exactly n_micro passes, with each pass's weight.

        A process left without an example runs one with weight 0 so that every process takes part in the
        gradient all-reduce; every process runs exactly n_micro passes (accelerate counts them to know when to
        synchronise and step), passes beyond this process's examples repeat one with weight 0."""
        rank, world = self.accelerator.process_index, self.world
        local = idx[rank::world]
        weight = len(local) / len(idx) * world
        if not local:
            local, weight = idx[:1], 0.0
        parts = [local[s:s + self.micro] for s in range(0, len(local), self.micro)]
        shares = [len(part) / len(local) * weight for part in parts]
        parts += [local[:1]] * (self.n_micro - len(parts))
        shares += [0.0] * (self.n_micro - len(shares))
        return parts, shares, weight

    def step(self, epoch: int, idx: list[int]) -> dict:
        """One optimizer step on the global batch `idx`: its metrics row."""
        accelerator, device, n_micro, world = self.accelerator, self.device, self.n_micro, self.world
        parts, shares, weight = self._micro_batches(idx)
        loss_value, extra, tokens = torch.zeros((), device=device), {}, 0
        for k, (part, share) in enumerate(zip(parts, shares)):
            with accelerator.accumulate(self.policy):
                part_loss, part_extra, part_tokens = _forward_loss(
                    self.policy, self.algo, accelerator, [self.encoded[i] for i in part],
                    {key: tensor[part] for key, tensor in self.frozen.items()},
                    {f: [self.examples[i].fields[f] for i in part] for f in self.fields}, self.pad_id, device,
                    self.shared_prefix, self.trunk, part)
                bad = torch.tensor(float(not torch.isfinite(part_loss)), device=device)
                if world > 1:
                    bad = accelerator.reduce(bad, reduction="sum")
                if bad:
                    raise TrainingDiverged(f"{self.algorithm}: loss is {part_loss.item()} at epoch {epoch} step "
                                           f"{self.step_i} (micro-batch {k + 1}/{n_micro}); no model was published")
                # accelerate divides by n_micro; the shares make the summed gradient the full batch's
                accelerator.backward(part_loss * share * n_micro)
                loss_value += part_loss.detach() * share / world
                if share:
                    tokens += part_tokens
                for key, value in part_extra.items():  # every process gets the keys, for the reduce below
                    extra[key] = extra.get(key, 0.0) + (value * share / weight if share else 0.0)
                if k == n_micro - 1:
                    grad_norm, lr = self._optimizer_step()
        if world > 1:
            loss_value = accelerator.reduce(loss_value, reduction="sum")
            # each process's metrics are means over its share of the batch: weight them by that share
            keys = sorted(extra)
            shares_sum = accelerator.reduce(torch.tensor([extra[k] * weight / world for k in keys], device=device),
                                            reduction="sum")
            extra = dict(zip(keys, shares_sum.tolist()))
        tokens = torch.tensor(tokens, device=device)
        tokens = int(accelerator.reduce(tokens, reduction="sum") if world > 1 else tokens)
        self.train_tokens += tokens
        return {"step": self.step_i, "epoch": epoch, "lr": lr, "loss": loss_value.item(),
                "grad_norm": None if grad_norm is None else float(grad_norm), "tokens": tokens, **extra}

    def _optimizer_step(self):
        """Clip, set the schedule's learning rate, step, zero: (grad norm, lr)."""
        grad_norm = self.accelerator.clip_grad_norm_(self.clip_params, self.cfg["max_grad_norm"])
        lr = self.cfg["lr"] * lr_factor(self.step_i, len(self.schedule), self.warmup_steps, self.lr_kind)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return grad_norm, lr

    def _start_tracking(self) -> None:
        """One tracker run per algorithm × round (train.report_to), with the round's settings as its config."""
        if not self.tracking:
            return
        name = self.cfg["report_to"]
        run_dir = str(Path(self.tracking_dir) / self.run_name)
        # dvclive: its own dvc.yaml in the run folder (not the project's), no DVC experiment commit. Its files
        # go one level down (live/): with dvc.yaml inside its own folder, dvclive 3.49 appends its entries
        # again at every update instead of replacing them. A resumed round continues the run's files.
        live = {"dir": f"{run_dir}/live", "save_dvc_exp": False, "dvcyaml": f"{run_dir}/dvc.yaml",
                "resume": self.step_i > 0}
        init = {"dvclive": {"dvclive": live},
                "wandb": {"wandb": {"name": self.run_name, "dir": self.tracking_dir}}}.get(name, {})
        project = self.run_name if name == "tensorboard" else "gamealign"
        self.accelerator.init_trackers(project, config={"algorithm": self.algorithm, "seed": self.seed,
                                                        **{f"hp_{k}": v for k, v in self.hparams.items()},
                                                        "lr": self.cfg["lr"], "batch_size": self.cfg["batch_size"]},
                                       init_kwargs=init)

    def train(self) -> None:
        """Every remaining step of the schedule, with a progress bar and a checkpoint every `checkpoint_every`."""
        self._start_tracking()
        self.policy.train()
        t0, total = time.time(), len(self.schedule)
        with tqdm(total=total, initial=self.step_i, desc=f"train {self.algorithm}", unit="step",
                  disable=not self.is_main) as bar:
            for epoch, idx in self.schedule[self.step_i:]:
                row = self.step(epoch, idx)
                self.metrics_rows.append(row)
                if self.tracking:
                    self.accelerator.log({k: v for k, v in row.items() if k != "step" and v is not None},
                                         step=row["step"])
                self.step_i += 1
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.4f}")
                if self.every and self.step_i % self.every == 0 and self.step_i < total:
                    if self.is_main:
                        self.ckpt.save(self.model, self.opt, {"step": self.step_i, "train_tokens": self.train_tokens,
                                                              "metrics": self.metrics_rows})
                    self.accelerator.wait_for_everyone()
        self.train_seconds = time.time() - t0
        self.policy.eval()
        if self.tracking:
            self.accelerator.end_training()

    # --- cleanup ----------------------------------------------------------------------------------
    def publish_unchanged(self) -> dict:
        """The study goes on: this round publishes π_t unchanged and says why."""
        reason = f"no training examples: all {len(self.groups)} groups tied or were empty"
        return _publish_unchanged(self.algorithm, self.hparams, self.cfg, self.init_model, self.ref_model,
                                  self.out_dir, self.seed, self.counts, self.data_files, reason,
                                  time.time() - self.t_start)

    def cleanup(self) -> dict:
        """The manifest, and the model (gathered from its shards where FSDP / ZeRO-3 split it) published
        atomically with its metrics by the first process; the mid-round checkpoint removed."""
        accelerator = self.accelerator
        counts = dict(self.counts or {})
        counts.update(train_examples=len(self.examples), train_steps=self.step_i, train_tokens=self.train_tokens,
                      trainable_parameters=self.n_trainable)
        info = _round_manifest(self.algorithm, self.hparams, self.cfg, self.seed, self.init_model, self.ref_model,
                               self.data_files, counts,
                               {"frozen_logprobs_s": round(self.frozen_seconds, 3),
                                "train_s": round(self.train_seconds, 3),
                                "total_s": round(time.time() - self.t_start, 3)},
                               final_loss=self.metrics_rows[-1]["loss"])
        info["processes"] = self.world
        info["distributed"] = accelerator.distributed_type.name  # NO, MULTI_CPU, MULTI_GPU, FSDP, DEEPSPEED
        info["kernels"] = {"liger": self.fused, "fused_adamw": self.fused_adam, "trunk_cache": self.trunk is not None}
        state = None
        if self.world > 1:  # the full weights, gathered from the shards where FSDP / ZeRO-3 split them
            gathered = accelerator.get_state_dict(self.policy)  # under ZeRO-3 only the first process gets it
            state = {k.removeprefix("model."): v for k, v in gathered.items()} if gathered is not None else None
        if self.is_main:
            with atomic_path(self.out_dir, is_dir=True) as tmp:
                model = self.model
                if self.cfg.get("peft"):   # the adapter beside a merged plain checkpoint, which every later stage loads
                    model.save_pretrained(tmp / "adapter")
                    model = model.merge_and_unload()
                    state = None
                model.save_pretrained(tmp, safe_serialization=True, **({"state_dict": state} if state else {}))
                self.tokenizer.save_pretrained(tmp)
                _write_metrics_and_manifest(tmp, self.metrics_rows, info)
            self.ckpt.remove()
        accelerator.wait_for_everyone()
        return info


def train_round(**kwargs) -> dict:
    """One round of `algorithm` (RoundRecipe's keyword arguments): setup → train → cleanup."""
    recipe = RoundRecipe(**kwargs)
    if not recipe.setup():
        return recipe.publish_unchanged()
    recipe.train()
    return recipe.cleanup()
