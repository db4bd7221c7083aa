"""gamealign.study: the model ids, which models each benchmark scores, and the report's index — the one definition
the workflow's rules and the bench scripts share (the dry-run DAG tests check the rules read it)."""

from gamealign import study


def _cfg(**study_keys):
    return {"study": {"seed": 7, "rounds": 2, "results_dir": "res", **study_keys},
            "algorithms": {"dpo": {}, "wind": {}}, "game": {"enabled": True, "families": ["bt", "cyclic"]},
            "evaluation": {"benchmarks": ["heldout", "alpaca_eval"], "alpaca_eval": {"models": "sft_and_last"}}}


def test_model_ids_and_their_parts_one_seed():
    cfg = _cfg()
    ids = study.model_ids(cfg)
    assert ids == ["sft", "dpo-r1", "dpo-r2", "wind-r1", "wind-r2"]
    assert [study.split_model_id(m) for m in ids[:2]] == [("", "sft", 0), ("", "dpo", 1)]
    assert study.model_dir(cfg, *study.split_model_id("sft")) == "res/sft/model"
    assert study.model_dir(cfg, "", "wind", 2, root="copy") == "copy/runs/wind/r2/model"


def test_several_seeds_name_their_folder_and_seed():
    cfg = _cfg(seeds=[3, 4])
    ids = study.model_ids(cfg)
    assert ids[:3] == ["sft", "seed3/dpo-r1", "seed3/dpo-r2"] and len(ids) == 1 + 2 * 2 * 2
    assert study.split_model_id("seed4/wind-r2") == ("seed4/", "wind", 2)
    assert study.rep_seed(cfg, "seed4/") == 4 and study.rep_seed(_cfg(), "") == 7
    index = study.report_index(cfg)
    assert {m["seed"] for m in index["models"]} == {None, 3, 4}
    assert index["models"][1]["manifest"] == "res/runs/seed3/dpo/r1/model/manifest.json"


def test_benchmark_model_ids_follow_evaluation_models():
    cfg = _cfg()
    assert study.benchmark_model_ids(cfg, "heldout") == study.model_ids(cfg)
    assert study.benchmark_model_ids(cfg, "alpaca_eval") == ["sft", "dpo-r2", "wind-r2"]
    cfg["evaluation"]["alpaca_eval"]["models"] = "sft"
    assert study.benchmark_model_ids(cfg, "alpaca_eval") == ["sft"]


def test_report_index_lists_each_benchmarks_scores_and_the_game_folders():
    index = study.report_index(_cfg(), root="copy")
    assert [(s["algorithm"], s["round"], s["benchmark"]) for s in index["scores"]][-3:] == [
        ("sft", 0, "alpaca_eval"), ("dpo", 2, "alpaca_eval"), ("wind", 2, "alpaca_eval")]
    assert index["scores"][0] == {"seed": None, "algorithm": "sft", "round": 0, "benchmark": "heldout",
                                  "path": "copy/eval/sft/heldout_winrate.json"}
    assert index["games"] == ["copy/game/bt", "copy/game/cyclic"]
    cfg = _cfg()
    cfg["game"]["enabled"] = False
    assert study.report_index(cfg)["games"] == []
