"""gamealign.timings: Snakemake benchmark files → per-stage timings, and its errors."""

import pandas as pd
import pytest

from gamealign.cli import main
from gamealign.io import DataError
from gamealign.timings import read_benchmarks, summarise, write_timings

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(root, rule, job, *rows):
    path = root / rule / f"{job}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{s}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t0\t{cpu}\n" for s, rss, cpu in rows))
    return path


@pytest.fixture
def study(tmp_path):
    root = tmp_path / "benchmarks"
    bench(root, "train", "dpo_r1", (40.0, 3000.5, 70.0))
    bench(root, "train", "inpo_r1", (60.0, 3500.0, 100.0))
    bench(root, "sample", "shared_r1", (30.0, 2000.0, 55.0))
    bench(root, "report", "report", (2.0, 200.0, 1.5))
    bench(root, "eval_generate", "sft_heldout", (10.0, 1000.0, 18.0), (12.0, 1100.0, 20.0))  # 2 repeats
    bench(root, "zz_custom", "x", (1.0, "NA", 0.5))
    return root


def test_jobs_in_dag_order_and_stage_sums(study):
    jobs = read_benchmarks(study)
    assert list(jobs.rule) == ["sample", "train", "train", "eval_generate", "report", "zz_custom"]
    assert list(jobs.job[:3]) == ["shared_r1", "dpo_r1", "inpo_r1"]
    rep = jobs.set_index("job").loc["sft_heldout"]
    assert rep.s == pytest.approx(11.0) and rep.max_rss_mb == pytest.approx(1100.0) and rep.cpu_s == pytest.approx(19.0)
    assert pd.isna(jobs.set_index("job").loc["x"].max_rss_mb)
    summary = summarise(jobs).set_index("stage")
    train = summary.loc["train"]
    assert (train.jobs, train.job_s, train.mean_s, train.max_s, train.max_rss_mb, train.cpu_s) == (
        2, pytest.approx(100.0), pytest.approx(50.0), pytest.approx(60.0), pytest.approx(3500.0), pytest.approx(170.0))
    total = summary.loc["all"]
    assert total.jobs == 6 and total.job_s == pytest.approx(40 + 60 + 30 + 2 + 11 + 1)
    assert list(summary.index) == ["sample", "train", "eval_generate", "report", "zz_custom", "all"]


def test_cli_writes_markdown_and_csv(study, tmp_path, capsys):
    assert main(["timings", "--bench-dir", str(study)]) == 0
    md = (study / "timings.md").read_text()
    assert "| train | 2 | 100.0 | 50.0 | 60.0 | 3500 | 170.0 |" in md
    assert "| train | dpo_r1 | 40.0 | 3000 | 70.0 |" in md      # rounded to whole MB
    assert md in capsys.readouterr().out
    csv = pd.read_csv(study / "timings.csv")
    assert list(csv.columns) == ["rule", "job", "s", "max_rss_mb", "cpu_s"] and len(csv) == 6
    # a second run reads only <rule>/<job>.tsv, not its own outputs
    assert main(["timings", "--bench-dir", str(study), "--out-md", str(tmp_path / "t.md")]) == 0
    assert (tmp_path / "t.md").read_text() == md


def test_cli_finds_the_folder_from_a_config(study, tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "study.yaml"
    cfg.write_text("study: {results_dir: %s}\nmodel: {source: tiny}\n" % study.parent)
    assert main(["timings", "--configfile", str(cfg)]) == 0
    assert "| sample | 1 | 30.0 |" in capsys.readouterr().out


def test_errors_name_the_file_and_line(tmp_path, capsys):
    assert main(["timings", "--bench-dir", str(tmp_path / "nope")]) == 2
    assert "nope: no such folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no benchmark files"):
        read_benchmarks(empty)
    bad = tmp_path / "bad"
    bench(bad, "train", "dpo_r1", (40.0, 1.0, 2.0), ("oops", 1.0, 2.0))
    with pytest.raises(DataError, match=r"bad/train/dpo_r1.tsv:3: column s is not a number \('oops'\)"):
        read_benchmarks(bad)
    other = tmp_path / "other"
    (other / "train").mkdir(parents=True)
    (other / "train" / "x.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(DataError, match=r"other/train/x.tsv: not a Snakemake benchmark file \(no column s, max_rss"):
        write_timings(other)
    assert not (other / "timings.md").exists()


def test_replicate_jobs_are_read_from_their_seed_folders(tmp_path):
    """A several-seed study writes <rule>/seed<N>/<job>.tsv; each is one job of its rule."""
    root = tmp_path / "benchmarks"
    bench(root, "train", "seed0/dpo_r1", (40.0, 3000.0, 70.0))
    bench(root, "train", "seed1/dpo_r1", (50.0, 3100.0, 80.0))
    bench(root, "prompts", "prompts", (1.0, 100.0, 1.0))
    jobs = read_benchmarks(root)
    assert list(zip(jobs.rule, jobs.job)) == [("prompts", "prompts"), ("train", "seed0/dpo_r1"),
                                              ("train", "seed1/dpo_r1")]
    assert summarise(jobs).set_index("stage").loc["train", "jobs"] == 2
