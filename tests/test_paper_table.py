"""benchmarks.paper_table end to end on a tiny synthetic set: teacher, students over two seeds,
the table, reuse; and the seed arithmetic on hand-made numbers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import paper_report, paper_table
from benchmarks.seed_stats import mean_sd, paired_gain
from training.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
SPEC = "synthetic:size=64x128,train=8,val=4,test=0,seed=1"


def _args(tmp_path, *extra):
    return ["--dataset", SPEC, "--epochs", "1", "--input-size", "64", "128", "--batch-size", "4",
            "--workers", "0", "--skip-export", "--no-progress", "--seeds", "2",
            "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "results"), *extra]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("paper")
    return tmp_path, paper_table.main(_args(tmp_path))


def test_table_has_every_stage_and_column(first_run):
    tmp_path, table = first_run
    stages = [row["stage"] for row in table["rows"]]
    assert stages == ["teacher_r50_step", "r18_plain_s0", "r18_kd_s0", "r18_plain_s1",
                      "r18_kd_s1", "mnv2_plain_s0", "mnv2_kd_s0", "mnv2_plain_s1", "mnv2_kd_s1"]
    saved = json.loads((tmp_path / "results" / "table.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(table["rows"]))
    teacher = table["rows"][0]
    for row in table["rows"]:
        assert 0 <= row["miou"] <= 100 and 0 <= row["mae_50_95"] <= 100
        assert row["peak_mem_mb"] > 0 and row["latency_ms_torch_fp32"] > 0
        assert row["train_wall_s"] > 0
        if row is not teacher:
            assert row["gflops"] < teacher["gflops"] and row["params_m"] < teacher["params_m"]
    # The KD stages really distilled: their runs recorded the teacher and cached soft labels.
    work = tmp_path / "work"
    kd_config = json.loads((work / "mnv2_kd_s1" / "done.json").read_text())["config"]
    assert kd_config["teacher"].endswith("teacher_r50_step/best.pth") and kd_config["seed"] == 1
    assert kd_config["soft_labels"] == "cached" and any((work / "soft_label_cache").iterdir())
    # The paired gain is KD minus no-KD of the same seed, averaged over seeds.
    by = {row["stage"]: row["miou"] for row in table["rows"]}
    gains = [by[f"mnv2_kd_s{s}"] - by[f"mnv2_plain_s{s}"] for s in (0, 1)]
    summary = table["seed_summary"]["mnv2"]
    assert summary["kd_gain"]["differences"] == pytest.approx(gains)
    assert summary["plain"]["miou"]["values"] == [by["mnv2_plain_s0"], by["mnv2_plain_s1"]]
    goals = {goal["goal"]: goal for goal in table["goals"]}
    goal = goals["mnv2 paired KD gain >= +1.0 mIoU, 95 % interval above 0"]
    assert goal["value"] == pytest.approx(sum(gains) / 2)
    assert table["bf16_used"] in (True, False) and table["machine"]["machine"]
    markdown = (tmp_path / "results" / "table.md").read_text()
    assert "95 % interval" in markdown and "per seed" in markdown
    for name in ("table.md", "summary.png", "evaluation/overlays.png"):
        assert (tmp_path / "results" / name).stat().st_size > 0


def test_rerun_reuses_finished_stages(first_run, capsys):
    tmp_path, table = first_run
    best = tmp_path / "work" / "teacher_r50_step" / "best.pth"
    before = best.stat().st_mtime_ns
    again = paper_table.main(_args(tmp_path))
    assert best.stat().st_mtime_ns == before
    assert "finished earlier" in capsys.readouterr().err
    assert [r["miou"] for r in again["rows"]] == [r["miou"] for r in table["rows"]]


def test_an_unfinished_stage_resumes_from_its_last_checkpoint(first_run, capsys):
    tmp_path, _ = first_run
    done = tmp_path / "work" / "mnv2_kd_s0" / "done.json"
    record = json.loads(done.read_text())
    done.unlink()  # as if the run had been interrupted after its last save
    paper_table.main(_args(tmp_path))
    assert "[mnv2_kd_s0] resuming from" in capsys.readouterr().err
    again = json.loads(done.read_text())
    assert again["resumed"] and again["train_wall_s"] == pytest.approx(record["train_wall_s"])


def test_kd_stage_of_another_teacher_is_refused(first_run):
    tmp_path, _ = first_run
    done = tmp_path / "work" / "r18_kd_s0" / "done.json"
    original = done.read_text()
    done.write_text(json.dumps(dict(json.loads(original), teacher_sha256="0" * 64)))
    try:
        with pytest.raises(UserError, match="another teacher"):
            paper_table.main(_args(tmp_path))
    finally:
        done.write_text(original)


def test_changed_settings_are_refused_not_overwritten(first_run):
    tmp_path, _ = first_run
    with pytest.raises(UserError, match="other settings"):
        paper_table.main(_args(tmp_path, "--teacher-epochs", "2"))


@pytest.mark.parametrize("extra, message", [
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--input-size", "60", "128"], "divisible"),
])
def test_bad_arguments(tmp_path, extra, message):
    with pytest.raises(UserError, match=message):
        paper_table.main(_args(tmp_path, *extra))


def test_dataset_without_val_split_is_refused(tmp_path):
    args = _args(tmp_path)
    args[1] = "synthetic:size=64x128,train=4,val=0,test=0"
    with pytest.raises(UserError, match="train and val"):
        paper_table.main(args)


def test_mean_sd_and_the_paired_gain_on_hand_made_numbers():
    plain, kd = [20.0, 22.0, 24.0], [21.5, 23.0, 26.5]  # differences 1.5, 1.0, 2.5
    summary = mean_sd(plain)
    assert summary["mean"] == 22.0 and summary["sd"] == pytest.approx(2.0) and summary["n"] == 3
    gain = paired_gain(kd, plain)
    assert gain["differences"] == [1.5, 1.0, 2.5]
    assert gain["mean"] == pytest.approx(5 / 3)
    sd = ((1.5 - 5 / 3) ** 2 + (1.0 - 5 / 3) ** 2 + (2.5 - 5 / 3) ** 2) / 2
    assert gain["sd"] == pytest.approx(sd ** 0.5)
    half = 4.302652729911275 * sd ** 0.5 / 3 ** 0.5  # t(0.975, 2 degrees of freedom)
    assert (gain["ci_low"], gain["ci_high"]) == pytest.approx((5 / 3 - half, 5 / 3 + half))
    # Unpaired, the same numbers would look far noisier: the pairing removes the seed effect.
    assert gain["sd"] < mean_sd(kd)["sd"]
    one = paired_gain([3.0], [1.0])
    assert one["mean"] == 2.0 and one["sd"] is None and one["ci_low"] is None
    with pytest.raises(ValueError, match="differ in length"):
        paired_gain([1.0, 2.0], [1.0])


def test_stage_plan_with_schedules_and_the_kd_grid(tmp_path):
    args = paper_table.parse_args(_args(tmp_path, "--schedule", "poly", "--compare-schedules",
                                        "--kd-grid", "mnv2", "--teacher-epochs", "6"))
    stages = paper_table.stage_configs(args)
    names = list(stages)
    assert names[0] == "teacher_r50_poly" and stages[names[0]]["study"]
    assert names[-2:] == ["teacher_r50_step", "teacher_r50_cosine"]  # after the students
    assert not any(stages[n]["study"] for n in names[-2:])
    grid = [n for n in names if stages[n]["role"] == "grid"]
    assert len(grid) == 8 and "mnv2_kd_a0.5_T2_s0" not in grid  # that cell is the study's
    assert stages["mnv2_kd_a0.3_T4_s0"]["config"]["alpha"] == 0.3
    assert stages["mnv2_kd_a0.3_T4_s0"]["config"]["temperature"] == 4.0
    for name in names:
        config = stages[name]["config"]
        assert config["lr_schedule"] == (name.split("_")[-1] if name.startswith("teacher")
                                         else "poly")
        if config["lr_schedule"] == "step":
            assert config["lr_step_epochs"] == 2  # the paper's 30 of 90, scaled to 6 epochs
        if stages[name]["distill"]:
            assert config["teacher"].endswith("teacher_r50_poly/best.pth")


def test_readme_block_is_rewritten_between_its_markers(first_run, tmp_path):
    _, table = first_run
    begin, end = paper_report.README_MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{begin}\nstale numbers\n{end}\noutro\n")
    assert paper_report.update_readme(table, readme)
    text = readme.read_text()
    assert "stale numbers" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert paper_report.readme_block(table) in text
    assert not paper_report.update_readme(table, readme)  # a second run changes nothing
    readme.write_text("no markers here\n")
    with pytest.raises(UserError, match="needs exactly one"):
        paper_report.update_readme(table, readme)
    assert readme.read_text() == "no markers here\n"  # nothing half-written


def test_the_readme_study_tables_are_the_committed_results():
    """README.md's study block must be what benchmarks.paper_report renders from the committed
    table.json: a hand-edited or stale number fails here."""
    table = json.loads((ROOT / "benchmarks/results/paper_table/table.json").read_text())
    begin, end = paper_report.README_MARKERS
    block = (ROOT / "README.md").read_text().split(begin)[1].split(end)[0]
    assert block == "\n" + paper_report.readme_block(table), (
        "regenerate it: python -m benchmarks.paper_report "
        "benchmarks/results/paper_table/table.json --readme README.md")


@pytest.mark.parametrize("mode", ["cached", "online"])
def test_soft_label_mode_reaches_only_the_distilled_stages(tmp_path, mode):
    args = paper_table.parse_args(_args(tmp_path, "--soft-labels", mode, "--bf16", "on"))
    stages = paper_table.stage_configs(args)
    for name, stage in stages.items():
        config = stage["config"]
        if stage["distill"]:
            assert config["soft_labels"] == mode
            # An online teacher runs every step, in bf16 like the student; a cached one once.
            assert config["teacher_bf16"] is (mode == "online")
        else:  # plain students are the same runs whichever labels the KD twins read
            assert config["teacher"] is None and config["teacher_bf16"] is False
    plain = [stages[n]["config"] for n in stages if n.startswith("r18_plain")]
    other = paper_table.stage_configs(paper_table.parse_args(
        _args(tmp_path, "--soft-labels", "online" if mode == "cached" else "cached",
              "--bf16", "on")))
    assert plain == [other[n]["config"] for n in other if n.startswith("r18_plain")]
