"""AlpacaEval 2.0 metrics: raw win rate and the length-controlled (LC) win rate.

LC is alpaca_eval's own GLM (`alpaca_eval.metrics.glm_winrate`): a logistic regression of the
preference on tanh(standardised length difference) (+ instruction difficulty) whose prediction at
zero length difference, averaged over instructions, is the LC win rate.

- online: `get_length_controlled_winrate` with its default `length_controlled_v1` GLM (it downloads
  `df_gamed.csv` — instruction difficulties and the gamed baselines it regularises towards);
- offline: the same code path with the `length_controlled_minimal` formula (no instruction
  difficulty, no regularisation to the gamed baselines, which live only in that hub file), fed a
  stand-in table so nothing is downloaded. `tests/test_benchmarks.py` checks it equals alpaca_eval's
  own `get_length_controlled_winrate` given the same inputs.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pandas as pd


def to_annotations(instructions, model_outputs, reference_outputs, p_model_wins, model="model",
                   baseline="baseline", annotator="gamealign") -> pd.DataFrame:
    """alpaca_eval's annotation table: output_1 = baseline, output_2 = model, preference ∈ [1, 2]."""
    return pd.DataFrame({
        "instruction": list(instructions), "output_1": list(reference_outputs), "output_2": list(model_outputs),
        "generator_1": baseline, "generator_2": model, "annotator": annotator,
        "preference": [1.0 + float(p) for p in p_model_wins], "index": range(len(p_model_wins)),
    })


@contextlib.contextmanager
def offline_glm_inputs(n_instructions: int):
    """Point alpaca_eval's df_gamed download at a local stand-in (difficulty 0, no gamed rows)."""
    import alpaca_eval.metrics.glm_winrate as glm

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "df_gamed.csv"
        pd.DataFrame({"model": "none", "index": range(n_instructions),
                      "instruction_difficulty": 0.0}).to_csv(path, index=False)
        original = glm.hf_hub_download
        glm.hf_hub_download = lambda *a, **k: str(path)
        try:
            yield glm
        finally:
            glm.hf_hub_download = original


MIN_LC_INSTRUCTIONS = 10


def length_controlled(annotations: pd.DataFrame, offline: bool = True) -> dict:
    """Raw and LC win rates (in %) with standard errors, from alpaca_eval's own code.

    LC is reported as NaN with the reason when the GLM cannot be estimated: fewer than
    MIN_LC_INSTRUCTIONS instructions (its 5-fold CV), or no variation in the length difference.
    """
    import alpaca_eval.metrics.glm_winrate as glm

    ann = annotations.copy()
    delta = ann["output_1"].str.len() - ann["output_2"].str.len()
    reason = None
    if len(ann) < MIN_LC_INSTRUCTIONS:
        reason = f"not estimable: {len(ann)} instructions (< {MIN_LC_INSTRUCTIONS})"
    elif delta.std() == 0 or delta.isna().any():
        reason = "not estimable: the length difference does not vary"
    if reason:
        from alpaca_eval.metrics.winrate import get_winrate

        out = get_winrate(ann)
        return {**{k: float(v) for k, v in out.items()}, "length_controlled_winrate": float("nan"),
                "lc_standard_error": float("nan"), "lc_glm": reason}
    if offline:
        with offline_glm_inputs(len(ann)) as g:
            out = g.get_length_controlled_winrate(ann, glm_info=g.GLM_INFO["length_controlled_minimal"],
                                                  save_weights_dir=None, is_warn_extreme_changes=False)
        out["lc_glm"] = "length_controlled_minimal (offline: no instruction difficulty / gamed baselines)"
    else:
        out = glm.get_length_controlled_winrate(ann, save_weights_dir=None)
        out["lc_glm"] = "length_controlled_v1"
    return {k: (float(v) if hasattr(v, "__float__") and not isinstance(v, str) else v) for k, v in out.items()}
