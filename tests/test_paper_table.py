"""benchmarks.paper_table end to end on a tiny synthetic set: teacher, students over two seeds,
the table, reuse; and the seed arithmetic on hand-made numbers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import paper_report, paper_table
from benchmarks.study_plan import LIGHTEST_FIRST, STUDENT_RECIPES, KDRecipe, StudyPlan, \
    stage_configs, training_order
from benchmarks.seed_stats import format_mean_sd, mean_sd, paired_gain
from training.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
SPEC = "synthetic:size=64x128,train=8,val=4,test=0,seed=1"
KD = "kd_cached_dist_a0.5_T1"  # the students' configs' recipe, in every KD stage's name


def _args(tmp_path, *extra):
    return ["--dataset", SPEC, "--epochs", "1", "--input-size", "64", "128", "--batch-size", "4",
            "--workers", "0", "--skip-export", "--no-progress", "--seeds", "2",
            "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "results"), *extra]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("paper")
    yield tmp_path, paper_table.main(_args(tmp_path))
    # Full-width checkpoints, best and last of nine stages: about 2 GB that pytest would keep
    # until the session ends, on a CI disk that also holds the venv.
    for checkpoint in (tmp_path / "work").rglob("*.pth"):
        checkpoint.unlink()


def test_table_has_every_stage_and_column(first_run):
    tmp_path, table = first_run
    stages = [row["stage"] for row in table["rows"]]
    kd = KD
    assert stages == ["teacher_r50_cosine", "r18_plain_s0", f"r18_{kd}_s0", "r18_plain_s1",
                      f"r18_{kd}_s1", "mnv2_plain_s0", f"mnv2_{kd}_s0", "mnv2_plain_s1",
                      f"mnv2_{kd}_s1"]
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
    kd_config = json.loads((work / f"mnv2_{kd}_s1" / "done.json").read_text())["config"]
    assert kd_config["teacher"].endswith("teacher_r50_cosine/best.pth")
    assert kd_config["seed"] == 1
    assert kd_config["soft_labels"] == "cached" and any((work / "soft_label_cache").iterdir())
    # The paired gain is KD minus no-KD of the same seed, averaged over seeds.
    by = {row["stage"]: row["miou"] for row in table["rows"]}
    gains = [by[f"mnv2_{kd}_s{s}"] - by[f"mnv2_plain_s{s}"] for s in (0, 1)]
    summary = table["seed_summary"]["mnv2"]
    assert summary["kd_gain"]["differences"] == pytest.approx(gains)
    assert summary["plain"]["miou"]["values"] == [by["mnv2_plain_s0"], by["mnv2_plain_s1"]]
    goals = {goal["goal"]: goal for goal in table["goals"]}
    goal = goals["mnv2 paired KD gain >= +1.0 mIoU, 95 % interval above 0"]
    assert goal["value"] == pytest.approx(sum(gains) / 2)
    gap = goals["DeepLabv3-Lite MNv2 (KD) within 3.5 mIoU of the teacher (the paper's gap)"]
    assert gap["value"] == pytest.approx(teacher["miou"] - sum(by[f"mnv2_{kd}_s{s}"]
                                                               for s in (0, 1)) / 2)
    # Per-class deltas are KD minus no-KD per class, averaged over the paired seeds.
    rows = {row["stage"]: row for row in table["rows"]}
    delta = summary["per_class_kd_delta"]["road"]
    expected = [rows[f"mnv2_{kd}_s{s}"]["per_class_iou"]["road"]
                - rows[f"mnv2_plain_s{s}"]["per_class_iou"]["road"] for s in (0, 1)]
    assert delta == pytest.approx(sum(expected) / 2)
    assert table["bf16_used"] in (True, False) and table["machine"]["machine"]
    markdown = (tmp_path / "results" / "table.md").read_text()
    assert "95 % interval" in markdown and "per seed" in markdown
    for name in ("table.md", "summary.png", "evaluation/overlays.png"):
        assert (tmp_path / "results" / name).stat().st_size > 0


def test_rerun_reuses_finished_stages(first_run, capsys):
    tmp_path, table = first_run
    best = tmp_path / "work" / "teacher_r50_cosine" / "best.pth"
    before = best.stat().st_mtime_ns
    again = paper_table.main(_args(tmp_path))
    assert best.stat().st_mtime_ns == before
    assert "finished earlier" in capsys.readouterr().err
    assert [r["miou"] for r in again["rows"]] == [r["miou"] for r in table["rows"]]


def test_an_unfinished_stage_resumes_from_its_last_checkpoint(first_run, capsys):
    tmp_path, _ = first_run
    done = tmp_path / "work" / f"mnv2_{KD}_s0" / "done.json"
    record = json.loads(done.read_text())
    done.unlink()  # as if the run had been interrupted after its last save
    paper_table.main(_args(tmp_path))
    assert f"[mnv2_{KD}_s0] resuming from" in capsys.readouterr().err
    again = json.loads(done.read_text())
    assert again["resumed"] and again["train_wall_s"] == pytest.approx(record["train_wall_s"])


def test_kd_stage_of_another_teacher_is_refused(first_run):
    tmp_path, _ = first_run
    done = tmp_path / "work" / f"r18_{KD}_s0" / "done.json"
    original = done.read_text()
    done.write_text(json.dumps(dict(json.loads(original), teacher_sha256="0" * 64)))
    try:
        with pytest.raises(UserError, match="another teacher"):
            paper_table.main(_args(tmp_path))
    finally:
        done.write_text(original)


def test_a_plain_stage_ignores_the_distillation_keys_it_never_read(first_run, capsys):
    """Runs recorded under other KD defaults (the teacher stored kd_loss kl, T 2 before DIST
    became the default) stay reusable; a KD stage with another recipe does not."""
    work = first_run[0] / "work"
    records = {name: work / name / "done.json" for name in ("teacher_r50_cosine",
                                                             f"r18_{KD}_s0")}
    originals = {name: path.read_text() for name, path in records.items()}
    try:
        for path in records.values():
            record = json.loads(path.read_text())
            record["config"].update(kd_loss="kl", temperature=2.0)
            path.write_text(json.dumps(record))
        stages = stage_configs(paper_table.parse_args(_args(first_run[0])))
        teacher = stages["teacher_r50_cosine"]
        capsys.readouterr()
        paper_table.run_stage("teacher_r50_cosine", teacher["config"], False, work)
        assert "[teacher_r50_cosine] finished earlier" in capsys.readouterr().err
        kd = stages[f"r18_{KD}_s0"]
        with pytest.raises(UserError, match="kd_loss: 'kl' there, 'dist' now"):
            paper_table.run_stage(f"r18_{KD}_s0", kd["config"], True, work)
    finally:
        for name, path in records.items():
            path.write_text(originals[name])


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
    # Plain floats: a verdict such as `ci_low > 0` must be a bool that json can write.
    assert type(gain["ci_low"]) is float and type(gain["ci_high"]) is float
    assert json.loads(json.dumps({"met": gain["ci_high"] > 0})) == {"met": True}
    assert format_mean_sd(gain, 2, signed=True) == f"+1.67 ± {sd ** 0.5:.2f}"
    assert format_mean_sd(summary) == "22.0 ± 2.0"
    # Unpaired, the same numbers would look far noisier: the pairing removes the seed effect.
    assert gain["sd"] < mean_sd(kd)["sd"]
    one = paired_gain([3.0], [1.0])
    assert one["mean"] == 2.0 and one["sd"] is None and one["ci_low"] is None
    with pytest.raises(ValueError, match="differ in length"):
        paired_gain([1.0, 2.0], [1.0])


def test_stage_plan_with_schedules_and_the_kd_grid(tmp_path):
    plan = paper_table.parse_args(_args(tmp_path, "--schedule", "poly", "--compare-schedules",
                                        "--kd-grid", "mnv2", "--teacher-epochs", "6"))
    stages = stage_configs(plan)
    names = list(stages)
    assert names[0] == "teacher_r50_poly" and stages[names[0]]["study"]
    assert names[-2:] == ["teacher_r50_step", "teacher_r50_cosine"]  # after the students
    assert not any(stages[n]["study"] for n in names[-2:])
    grid = [n for n in names if stages[n]["role"] == "grid"]
    assert len(grid) == 8 and f"mnv2_{KD}_s0" not in grid  # that cell is the study's
    assert stages["mnv2_kd_cached_dist_a0.3_T4_s0"]["config"]["alpha"] == 0.3
    assert stages["mnv2_kd_cached_dist_a0.3_T4_s0"]["config"]["temperature"] == 4.0
    for name in names:
        config = stages[name]["config"]
        assert config["lr_schedule"] == (name.split("_")[-1] if name.startswith("teacher")
                                         else "poly")
        if config["lr_schedule"] == "step":
            assert config["lr_step_epochs"] == 2  # the paper's 30 of 90, scaled to 6 epochs
        if stages[name]["distill"]:
            assert config["teacher"].endswith("teacher_r50_poly/best.pth")
    order = training_order(stages)  # the teacher, every MNv2 run, the R18 runs, the rest
    assert sorted(order) == sorted(names) and order[0] == "teacher_r50_poly"
    kinds = [stages[n].get("student", "teacher") for n in order]
    assert kinds.index("r18") > max(i for i, k in enumerate(kinds) if k == "mnv2")
    assert order[-2:] == names[-2:]
    assert sorted(LIGHTEST_FIRST) == sorted(STUDENT_RECIPES)  # a new student gets a place


def test_readme_block_is_rewritten_between_its_markers(first_run, tmp_path):
    _, table = first_run
    begin, end = paper_report.README_MARKERS
    readme = tmp_path / "results.md"  # docs/results.md holds the real block
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
    """docs/results.md's study block must be what benchmarks.paper_report renders from the
    committed table.json: a hand-edited or stale number fails here. The block has one home:
    the results page holds it once, and README.md holds no copy to go stale."""
    table = json.loads((ROOT / "benchmarks/results/paper_table/table.json").read_text())
    begin, end = paper_report.README_MARKERS
    page = (ROOT / "docs" / "results.md").read_text()
    assert page.count(begin) == 1 and page.count(end) == 1
    assert begin not in (ROOT / "README.md").read_text()
    block = page.split(begin)[1].split(end)[0]
    assert block == "\n" + paper_report.readme_block(table), (
        "regenerate it: python -m benchmarks.paper_report "
        "benchmarks/results/paper_table/table.json --readme docs/results.md")


@pytest.mark.parametrize("mode", ["cached", "online"])
def test_soft_label_mode_reaches_only_the_distilled_stages(tmp_path, mode):
    plan = paper_table.parse_args(_args(tmp_path, "--soft-labels", mode, "--bf16", "on"))
    stages = stage_configs(plan)
    for name, stage in stages.items():
        config = stage["config"]
        if stage["distill"]:
            assert config["soft_labels"] == mode
            # An online teacher runs every step, in bf16 like the student; a cached one once.
            assert config["teacher_bf16"] is (mode == "online")
        else:  # plain students are the same runs whichever labels the KD twins read
            assert config["teacher"] is None and config["teacher_bf16"] is False
    plain = [stages[n]["config"] for n in stages if n.startswith("r18_plain")]
    other = stage_configs(paper_table.parse_args(
        _args(tmp_path, "--soft-labels", "online" if mode == "cached" else "cached",
              "--bf16", "on")))
    assert plain == [other[n]["config"] for n in other if n.startswith("r18_plain")]


def test_the_pilot_reuses_the_study_runs_and_reports_best_and_last(first_run, tmp_path, capsys):
    """In the study's workdir the pilot trains only its recipes the study has not run."""
    work = first_run[0] / "work"
    finished = {p.name for p in work.iterdir() if (p / "done.json").is_file()}
    capsys.readouterr()
    report = paper_table.main(_args(tmp_path, "--workdir", str(work), "--pilot", "mnv2",
                                    "--pilot-recipe", "cached:dist:0.5:1",
                                    "--pilot-recipe", "online:dist:0.7:1"))
    assert [run["recipe"] for run in report["runs"]] == ["plain", KD, "kd_online_dist_a0.7_T1"]
    err = capsys.readouterr().err
    assert {name for name in finished if f"[{name}] finished earlier" in err} == {
        "teacher_r50_cosine", "mnv2_plain_s0", f"mnv2_{KD}_s0"}
    assert "[mnv2_kd_online_dist_a0.7_T1_s0] training" in err
    assert {p.name for p in work.iterdir() if (p / "done.json").is_file()} - finished == {
        "mnv2_kd_online_dist_a0.7_T1_s0"}  # no R18 and no other seed
    online = json.loads((work / "mnv2_kd_online_dist_a0.7_T1_s0" / "done.json").read_text())
    assert online["config"]["soft_labels"] == "online" and online["config"]["kd_loss"] == "dist"
    plain = report["runs"][0]
    for run in report["runs"]:
        assert run["gain_best"] == pytest.approx(run["val_miou_best"] - plain["val_miou_best"])
        assert run["gain_last"] == pytest.approx(run["val_miou_last"] - plain["val_miou_last"])
        assert 0 <= run["train_miou_last"] <= 100 and run["last_epoch"] == 1
        # metrics.csv now logs the running train mIoU beside val mIoU, every epoch
        assert run["train_miou_per_epoch"][0] is not None
        assert run["val_miou_per_epoch"][0] == pytest.approx(run["val_miou_last"], abs=1e-6)
    saved = json.loads((tmp_path / "results" / "pilot.json").read_text())
    assert saved["runs"] == json.loads(json.dumps(report["runs"]))
    assert "val mIoU best" in (tmp_path / "results" / "pilot.md").read_text()
    assert not (tmp_path / "results" / "table.json").exists()  # the study's table is untouched


def test_the_pilot_choice_needs_a_win_at_both_epochs():
    from benchmarks.pilot_report import choose
    runs = [{"recipe": "plain", "gain_best": 0.0, "gain_last": 0.0},
            {"recipe": "a", "gain_best": 2.0, "gain_last": -0.1},  # wins only at its best epoch
            {"recipe": "b", "gain_best": 0.5, "gain_last": 0.9},
            {"recipe": "c", "gain_best": 1.5, "gain_last": 0.4}]
    assert choose(runs)["recipe"] == "b"  # worst-case margin 0.5 beats c's 0.4
    assert choose(runs[:2])["recipe"] is None


def test_plain_twins_are_the_same_runs_whatever_the_recipe(tmp_path):
    plans = [paper_table.parse_args(_args(tmp_path, "--soft-labels", soft, "--alpha", alpha,
                                          "--kd-loss", loss))
             for soft, alpha, loss in (("cached", "0.5", "kl"), ("online", "0.3", "dist"))]
    plain = [{n: s["config"] for n, s in stage_configs(plan).items() if "_plain_" in n}
             for plan in plans]
    assert plain[0] == plain[1] and len(plain[0]) == 4
    kd = [n for n, s in stage_configs(plans[1]).items() if s["distill"]]
    assert kd[0] == "r18_kd_online_dist_a0.3_T1_s0"


def test_an_os8_teacher_gets_its_own_stages_and_shares_the_plain_runs(tmp_path):
    default, os8 = (stage_configs(paper_table.parse_args(_args(tmp_path, *extra)))
                    for extra in ([], ["--teacher-output-stride", "8"]))
    assert "teacher_r50_cosine" in default and "teacher_r50_os8_cosine" in os8
    assert default["teacher_r50_cosine"]["config"]["output_stride"] == 16
    assert os8["teacher_r50_os8_cosine"]["config"]["output_stride"] == 8
    plain = [{n: s["config"] for n, s in stages.items() if "_plain_" in n}
             for stages in (default, os8)]
    assert plain[0] == plain[1] and len(plain[0]) == 4  # no teacher touches them: reused
    distilled = {n: s for n, s in os8.items() if s["distill"]}
    assert sorted(distilled) == sorted(n.replace(f"{KD}_s", f"{KD}_os8teacher_s")
                                       for n, s in default.items() if s["distill"])
    for stage in distilled.values():  # each learns from the OS8 teacher, students stay OS16
        assert stage["config"]["teacher"].endswith("teacher_r50_os8_cosine/best.pth")
        assert stage["config"]["output_stride"] == 16


@pytest.mark.parametrize("change, message", [
    ({"epochs": 0}, "--epochs must be at least 1"),
    ({"teacher_output_stride": 32}, "--teacher-output-stride must be 8 or 16"),
    ({"pilot": "vgg"}, "--pilot must be one of"),
    ({"schedule": "linear"}, "--schedule must be one of"),
    ({"dataset": "synthetic:size=64x128,train=4,val=0,test=0"}, "train and val"),
])
def test_the_plan_checks_its_own_values(tmp_path, change, message):
    values = {"dataset": SPEC, "workdir": tmp_path / "w", "out": tmp_path / "o", **change}
    with pytest.raises(UserError, match=message):
        StudyPlan(**values)


BAD_RECIPES = {  # --pilot-recipe text -> what its one-line error says
    "online:kl:0.5": "expected SOFT_LABELS:LOSS:ALPHA:T",
    "live:kl:0.5:2": "soft_labels must be one of",
    "cached:mse:0.5:2": "kd_loss must be one of",
    "cached:kl:1.5:2": "alpha must be in",
    "cached:kl:0.5:0": "temperature must be positive",
}


@pytest.mark.parametrize("text, message", BAD_RECIPES.items())
def test_bad_kd_recipes_are_one_line_errors(text, message):
    with pytest.raises(UserError, match=message):
        KDRecipe.parse(text)


def test_the_seed0_int8_students_ship_with_their_contracts(tmp_path):
    plan = StudyPlan(dataset=SPEC, workdir=tmp_path / "work", out=tmp_path / "results")
    for name, body in (("mnv2_plain_s0", b"plain"), ("r18_kd_online_kl_a0.5_T2_s0", b"kd")):
        export = plan.workdir / "export" / name
        export.mkdir(parents=True)
        for precision, data in (("int8", body), ("dynamic-int8", b"not shipped"),
                                ("fp32", b"not shipped")):
            artifact = export / f"model_{precision.replace('-', '_')}.tflite"
            artifact.write_bytes(data)
            artifact.with_name(artifact.name + ".json").write_text(
                json.dumps({"artifact": {"precision": precision}}))
    written = paper_table.ship_models(plan, {"mnv2_plain_s0": {},
                                             "r18_kd_online_kl_a0.5_T2_s0": {}})
    models = plan.out / "models"
    assert sorted(p.relative_to(models).as_posix() for p in written) == [
        "mnv2_plain_s0/model_int8.tflite", "mnv2_plain_s0/model_int8.tflite.json",
        "r18_kd_online_kl_a0.5_T2_s0/model_int8.tflite",
        "r18_kd_online_kl_a0.5_T2_s0/model_int8.tflite.json"]
    assert (models / "mnv2_plain_s0" / "model_int8.tflite").read_bytes() == b"plain"
    assert not list(models.rglob("*fp32*")) and not list(models.rglob("*dynamic*"))
    assert not list(models.rglob("*.tmp"))
