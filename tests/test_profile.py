"""`python -m training.profile`: JSON keys, sanity of the numbers, clean errors."""
import json
import subprocess
import sys

import pytest

from training.models import STUDENTS, TEACHER

KEYS = {"model", "input_size", "output_stride", "num_classes", "params_m", "gmacs", "gflops",
        "size_mb", "peak_mem_mb", "latency_ms", "threads"}


def test_profile_json_has_sane_numbers(tmp_path, capsys):
    from training.profile import main
    out = tmp_path / "profile.json"
    main(["--input-size", "64", "128", "--threads", "1", "--num-classes", "3",
          "--json", str(out)])
    rows = {row["model"]: row for row in json.loads(out.read_text())}
    assert set(rows) == {TEACHER, *STUDENTS}
    for row in rows.values():
        assert KEYS <= row.keys()
        assert row["input_size"] == [64, 128] and row["threads"] == 1
        assert row["gflops"] > 0 and row["gflops"] == pytest.approx(2 * row["gmacs"])
        assert row["peak_mem_mb"] > 0 and row["latency_ms"] > 0 and row["size_mb"] > 0
    for student in STUDENTS:
        assert rows[student]["gflops"] < rows[TEACHER]["gflops"]
        assert rows[student]["params_m"] < rows[TEACHER]["params_m"]
        assert rows[student]["vs_teacher"]["gflops"] < 1
    table = capsys.readouterr().out
    assert "% FLOPs" in table and TEACHER in table


@pytest.mark.parametrize("args, message", [
    (["--models", "resnet9000"], "unknown model 'resnet9000'"),
    (["--output-stride", "32"], "output stride must be 8 or 16"),
    (["--num-classes", "1"], "num_classes must be at least 2"),
    (["--input-size", "100", "200"], "not divisible by the output stride"),
])
def test_bad_input_is_one_line_and_nonzero_exit(args, message, capsys):
    from training.errors import run_cli
    from training.profile import main
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, args)
    assert exit_info.value.code != 0
    stderr = capsys.readouterr().err
    assert message in stderr and len(stderr.strip().splitlines()) == 1


def test_cli_process_prints_no_traceback():
    result = subprocess.run([sys.executable, "-m", "training.profile", "--models", "nope"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown model") and "Traceback" not in result.stderr
