"""On-policy sampling with CTranslate2 (backend `ct2`; `pip install -e '.[ct2]'`): the CPU backend.

The policy's HF checkpoint is converted to CTranslate2's format in float32 (no quantisation: int8 would
sample from another policy than π_t) into a temporary folder, then `Generator.generate_batch` samples the
same work items as `sampling.generate` — every (prompt, k) — with temperature and nucleus (top-p) sampling
over the whole vocabulary, or greedily. The prompts, sorted by length, go ⌊batch_size / K⌋ to a call (at least
one) with `num_hypotheses=K`: CTranslate2 runs a prompt's prefill once and draws its K samples from copies of
that state, so a batch still decodes about `batch_size` sequences but pays a quarter of the prefill at K = 4
(the samples are independent draws from π_t as before; bench/README.md measures the gain; greedy, one
hypothesis a prompt stands for its K identical answers). Rows follow
DESIGN.md §3 exactly as the HF backend writes them (`sampling._row`: the text before the first EOS,
finish_reason "stop" or "length"). Seeded with `ctranslate2.set_random_seed(seed)` (one stream per job).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tqdm.auto import tqdm

from .sampling import _finish, _row, chat_texts


def convert(model_dir: str | Path, out_dir: str | Path) -> Path:
    """The HF checkpoint in CTranslate2's format, float32 weights (the policy itself)."""
    import gc

    from ctranslate2.converters import TransformersConverter
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    # the converter calls gc.collect() once per layer to free each converted layer; in a process that has
    # imported transformers each full collection walks every live object (0.24 s each, 7 of the 8 s a
    # SmolLM2 conversion took). Importing the model's module first and freezing the objects that exist then
    # keeps them out of those collections, which still free the converter's own garbage.
    MODEL_FOR_CAUSAL_LM_MAPPING[type(AutoConfig.from_pretrained(model_dir))]
    gc.freeze()
    try:
        return Path(TransformersConverter(str(model_dir), load_as_float16=False).convert(
            str(out_dir), quantization="float32", force=True))
    finally:
        gc.unfreeze()


def generate_ct2(model_dir, prompts: list[dict], k: int, *, temperature: float, top_p: float, max_new_tokens: int,
                 batch_size: int, seed: int, greedy: bool = False, system_prompt: str | None = None,
                 threads: int | None = None, desc: str = "sampling") -> tuple[list[dict], dict]:
    """Return (rows, stats) as `sampling.generate` does; the conversion time is in stats (`convert_s`)."""
    import ctranslate2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = chat_texts(tokenizer, prompts, system_prompt)
    ids = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    order = sorted(range(len(prompts)), key=lambda pi: (len(ids[pi]), pi))
    # greedy decoding is deterministic: one hypothesis a prompt, copied K times (CTranslate2 refuses more
    # hypotheses than beams under greedy search)
    hypotheses = 1 if greedy else k
    per_call = max(1, batch_size // hypotheses)
    eos = tokenizer.eos_token_id
    sampling = (dict(sampling_topk=1) if greedy else
                dict(sampling_topk=0, sampling_topp=top_p, sampling_temperature=temperature))
    with tempfile.TemporaryDirectory(prefix="ct2-") as tmp:
        t0 = time.time()
        path = convert(model_dir, tmp)
        convert_s = time.time() - t0
        generator = ctranslate2.Generator(str(path), device="cpu", compute_type="float32",
                                          intra_threads=threads or 0, inter_threads=1)
        ctranslate2.set_random_seed(seed)
        results, new_tokens = {}, 0
        t0 = time.time()
        with tqdm(total=len(prompts) * k, desc=desc, unit="seq") as bar:
            for start in range(0, len(order), per_call):
                batch = order[start:start + per_call]
                out = generator.generate_batch([tokenizer.convert_ids_to_tokens(ids[pi]) for pi in batch],
                                               max_length=max_new_tokens, include_prompt_in_result=False,
                                               end_token=[eos], return_end_token=True, max_batch_size=per_call,
                                               num_hypotheses=hypotheses, **sampling)
                for pi, res in zip(batch, out):
                    if len(res.sequences_ids) != hypotheses:   # CTranslate2 returns num_hypotheses per input
                        raise RuntimeError(f"CTranslate2 returned {len(res.sequences_ids)} samples for prompt "
                                           f"{prompts[pi]['id']!r}, expected {hypotheses}")
                    for kk, seq in enumerate(res.sequences_ids * (k // hypotheses)):
                        results[(pi, kk)] = _row(tokenizer, prompts[pi]["id"], kk, seq, {eos})
                        new_tokens += results[(pi, kk)]["n_tokens"]
                bar.update(len(batch) * k)
        rows, stats = _finish(prompts, k, results, new_tokens, time.time() - t0)
    stats["convert_s"] = round(convert_s, 3)
    return rows, stats
