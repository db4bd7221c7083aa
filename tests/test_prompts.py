import json

import pytest

from gamealign import constraints as C
from gamealign.io import DataError
from gamealign.prompts import builtin_prompts, load_prompt_file, make_prompt_sets


def test_builtin_generator_is_seeded_distinct_and_large():
    a = builtin_prompts(3000, seed=1)
    assert a == builtin_prompts(3000, seed=1)
    assert a != builtin_prompts(3000, seed=2)
    assert len({p["id"] for p in a}) == 3000
    assert len({p["messages"][0]["content"] for p in a}) == 3000
    for p in a[:50]:
        assert p["meta"]["constraints"]
        for c in p["meta"]["constraints"]:
            assert C.describe(c) in p["messages"][0]["content"]


def test_partitions_are_disjoint():
    sets = make_prompt_sets({"source": "builtin", "per_round": 10, "n_eval": 7}, rounds=3, seed=0)
    ids = [p["id"] for rows in sets.values() for p in rows]
    assert len(ids) == len(set(ids)) == 37
    assert sorted(sets) == ["eval_heldout", "train_r1", "train_r2", "train_r3"]


def test_validation_partition_is_disjoint_and_leaves_the_others_unchanged():
    cfg = {"source": "builtin", "per_round": 10, "n_eval": 7}
    plain = make_prompt_sets(cfg, rounds=2, seed=0)
    sets = make_prompt_sets({**cfg, "n_validation": 5}, rounds=2, seed=0)
    assert {k: v for k, v in sets.items() if k != "validation"} == plain
    held = {p["id"] for k, rows in sets.items() if k != "validation" for p in rows}
    assert len(sets["validation"]) == 5 and not held & {p["id"] for p in sets["validation"]}


def test_short_style_asks_for_short_answers_with_attainable_constraints():
    from gamealign.prompts import SHORT_TASKS

    rows = builtin_prompts(400, seed=3, style="short")
    assert len({p["id"] for p in rows}) == 400 and all(p["meta"]["task"] in SHORT_TASKS for p in rows)
    for p in rows:
        for c in p["meta"]["constraints"]:
            assert c.get("n", 0) <= 40 and not (c["type"] == "bullets" and c["n"] > 2)
            assert not (c["type"] == "max_sentences" and c["n"] > 2)
            assert c["type"] not in ("json", "lowercase", "end_with")   # SmolLM2-135M (almost) never meets them
    with pytest.raises(ValueError, match="prompts.style"):
        builtin_prompts(3, seed=0, style="long")


@pytest.mark.parametrize("c, good, bad", [
    ({"type": "max_words", "n": 3}, "one two three", "one two three four"),
    ({"type": "bullets", "n": 2}, "- a\n- b", "- a"),
    ({"type": "include", "word": "simple"}, "It is simple.", "It is easy."),
    ({"type": "exclude", "word": "very"}, "It is fine.", "It is very fine."),
    ({"type": "json"}, '{"answer": 1}', "answer: 1"),
    ({"type": "title"}, "<<Hi>> text", "Hi text"),
    ({"type": "lowercase"}, "all lower", "Not lower"),
    ({"type": "end_with", "phrase": "Enjoy!"}, "Cake. Enjoy!", "Enjoy! Cake."),
])
def test_constraint_checks(c, good, bad):
    assert C.satisfied(c, good) and not C.satisfied(c, bad)


def test_file_loader_accepts_prompt_instruction_and_messages(tmp_path):
    f = tmp_path / "p.jsonl"
    rows = [{"prompt": "Say hi"}, {"instruction": "Say bye", "id": "x2"},
            {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"}]}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = load_prompt_file(f)
    assert [p["messages"][-1]["content"] for p in out] == ["Say hi", "Say bye", "Q?"]
    assert out[1]["id"] == "x2"


def test_malformed_line_names_file_and_line(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "ok"}\n\n{"prompt": oops}\n')
    with pytest.raises(DataError, match=r"p\.jsonl:3: not valid JSON"):
        load_prompt_file(f)


def test_missing_field_names_file_and_line(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "ok"}\n{"text": "no prompt field"}\n')
    with pytest.raises(DataError, match=r"p\.jsonl:2: needs a 'prompt'"):
        load_prompt_file(f)


def test_empty_file_is_refused(tmp_path):
    f = tmp_path / "empty.jsonl"
    f.write_text("\n")
    with pytest.raises(DataError, match=r"empty\.jsonl: file is empty"):
        load_prompt_file(f)


def test_prompts_cli_reports_bad_file(env, tmp_path):
    import subprocess

    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a"}\n[1, 2]\n')
    params = json.dumps({"source": "file", "path": str(f), "per_round": 1, "n_eval": 1, "split": "train"})
    proc = subprocess.run(["gamealign", "prompts", "--params", params, "--rounds", "1", "--out-dir",
                           str(tmp_path / "out")], env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "p.jsonl:2: expected a JSON object" in proc.stderr


def test_constraint_types_keeps_only_the_named_types_and_names_an_unknown_one():
    rows = builtin_prompts(300, seed=5, style="open", constraint_types=["include", "max_words", "end_with"])
    assert {c["type"] for p in rows for c in p["meta"]["constraints"]} == {"include", "max_words", "end_with"}
    everything = builtin_prompts(300, seed=5, style="open")
    assert {"json", "lowercase"} <= {c["type"] for p in everything for c in p["meta"]["constraints"]}
    with pytest.raises(ValueError, match=r"prompts.constraint_types: \['json'\] — the short style offers"):
        builtin_prompts(3, seed=0, style="short", constraint_types=["json", "title"])
    with pytest.raises(ValueError, match="an empty list"):
        builtin_prompts(3, seed=0, constraint_types=[])
    cfg = {"source": "builtin", "per_round": 10, "n_eval": 7, "style": "open", "constraint_types": ["title", "include"]}
    sets = make_prompt_sets(cfg, rounds=2, seed=0)
    assert {c["type"] for rows in sets.values() for p in rows for c in p["meta"]["constraints"]} <= {"title", "include"}
