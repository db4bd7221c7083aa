"""Open LLM Leaderboard tasks through lm-eval from local files: task YAMLs, errors, one small real run."""

import json

import pytest
import yaml

from conftest import LEADERBOARD_DATA, NO_LEADERBOARD_DATA
from gamealign.config import validate_config
from gamealign.evaluation.leaderboard import LeaderboardDataError, write_task_yamls

needs_data = pytest.mark.skipif(not LEADERBOARD_DATA.is_dir(), reason=NO_LEADERBOARD_DATA)


def params(**kw):
    cfg = validate_config({"evaluation": {"open_llm": {"data_dir": str(LEADERBOARD_DATA), **kw}}}, check_paths=False)
    return cfg["evaluation"]["open_llm"]


@needs_data
def test_task_yamls_point_lm_eval_tasks_at_the_local_files(tmp_path):
    names = write_task_yamls(tmp_path, params(mmlu_subjects=["anatomy", "virology"]))
    assert names == {"arc_challenge": "ga_arc_challenge", "hellaswag": "ga_hellaswag", "mmlu": "ga_mmlu",
                     "truthfulqa_mc2": "ga_truthfulqa_mc2", "winogrande": "ga_winogrande", "gsm8k": "ga_gsm8k"}
    arc = yaml.safe_load((tmp_path / "ga_arc_challenge.yaml").read_text())
    assert arc["include"].endswith("lm_eval/tasks/arc/arc_challenge.yaml") and arc["num_fewshot"] == 25
    assert arc["dataset_path"] == "json" and arc["fewshot_split"] == "train"
    assert arc["dataset_kwargs"]["data_files"]["train"].endswith("train.partial_1056of1119.jsonl")
    wino = yaml.safe_load((tmp_path / "ga_winogrande.yaml").read_text())
    assert wino["dataset_kwargs"]["data_files"]["train"].endswith("winogrande/train_l.jsonl")
    group = yaml.safe_load((tmp_path / "ga_mmlu.yaml").read_text())
    assert group["task"] == ["ga_mmlu_anatomy", "ga_mmlu_virology"]
    assert group["aggregate_metric_list"] == [{"metric": "acc", "weight_by_size": True}]
    sub = yaml.safe_load((tmp_path / "ga_mmlu_virology.yaml").read_text())
    assert sub["dataset_kwargs"]["data_files"] == {"test": str((LEADERBOARD_DATA / "mmlu/virology/test.jsonl").resolve()),
                                                   "dev": str((LEADERBOARD_DATA / "mmlu/virology/dev.jsonl").resolve())}
    gsm = yaml.safe_load((tmp_path / "ga_gsm8k.yaml").read_text())
    assert gsm["generation_kwargs"]["max_gen_toks"] == 256 and gsm["num_fewshot"] == 5


def test_missing_data_is_named(tmp_path):
    with pytest.raises(LeaderboardDataError, match=r"evaluation.open_llm.data_dir: .*nowhere is not a folder"):
        write_task_yamls(tmp_path / "t", {**params(), "data_dir": str(tmp_path / "nowhere")})
    (tmp_path / "partial").mkdir()
    with pytest.raises(LeaderboardDataError, match=r"arc_challenge needs .*arc_challenge/test.jsonl"):
        write_task_yamls(tmp_path / "t", {**params(tasks=["arc_challenge"]), "data_dir": str(tmp_path / "partial")})


@needs_data
def test_unknown_mmlu_subject_is_named(tmp_path):
    with pytest.raises(LeaderboardDataError, match=r"mmlu_subjects: unknown subject\(s\) \['astrology'\]"):
        write_task_yamls(tmp_path, params(mmlu_subjects=["astrology"]))


@needs_data
def test_a_small_real_run_on_the_tiny_model(tiny_sft, tmp_path):
    from gamealign.evaluation.leaderboard import run_leaderboard

    res = run_leaderboard(model_path=str(tiny_sft), params=params(tasks=["winogrande", "truthfulqa_mc2"], limit=3),
                          out_json=str(tmp_path / "o.json"), out_samples=str(tmp_path / "s.jsonl"),
                          out_raw=str(tmp_path / "raw.json"), model_id="sft")
    assert set(res["tasks"]) == {"winogrande", "truthfulqa_mc2"} and not res["complete"]
    items = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    for task in ("winogrande", "truthfulqa_mc2"):
        mine = [it["acc"] for it in items if it["task"] == task]
        assert len(mine) == 3 and res["tasks"][task]["value"] == pytest.approx(sum(mine) / 3)
    assert res["average"] == pytest.approx((res["tasks"]["winogrande"]["value"] +
                                            res["tasks"]["truthfulqa_mc2"]["value"]) / 2)
    assert "winogrande_l" in res["tasks"]["winogrande"]["substitution"]
    assert json.loads((tmp_path / "o.json").read_text()) == json.loads(json.dumps(res))
