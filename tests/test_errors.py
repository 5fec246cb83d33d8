"""run_cli turns user errors into one line and exit 2, and lets a bug keep its traceback."""
from __future__ import annotations

import pytest

from training.data import DataError, parse_dataset_spec
from training.errors import UserError, require_at_least_one, run_cli


def _main_raising(error: BaseException):
    def main(argv=None):
        raise error
    return main


@pytest.mark.parametrize("error", [
    UserError("--threads must be at least 1, got 0"),
    FileNotFoundError(2, "No such file or directory", "x.pth"),
    PermissionError(13, "Permission denied", "out"),
])
def test_user_errors_are_one_line_and_exit_2(capsys, error):
    with pytest.raises(SystemExit) as stopped:
        run_cli(_main_raising(error))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_the_data_packages_errors_are_user_errors(capsys):
    assert issubclass(DataError, UserError)
    with pytest.raises(SystemExit) as stopped:
        run_cli(lambda argv: parse_dataset_spec("imagenet:/data"))
    assert stopped.value.code == 2
    assert "unknown dataset 'imagenet:/data'" in capsys.readouterr().err


def test_a_plain_value_error_is_a_bug_and_keeps_its_traceback(capsys):
    """A ValueError that no one raised for the user (a shape mismatch, a bad unpacking) is not
    printed as 'error: ...' with exit 2: it propagates, so Python shows where it came from."""
    with pytest.raises(ValueError, match="too many values to unpack") as raised:
        run_cli(_main_raising(ValueError("too many values to unpack (expected 2)")))
    assert not isinstance(raised.value, UserError)
    assert "error:" not in capsys.readouterr().err


def test_a_debug_run_gets_the_user_errors_traceback(monkeypatch):
    monkeypatch.setenv("SEGKIT_DEBUG", "1")
    with pytest.raises(UserError, match="bad"):
        run_cli(_main_raising(UserError("bad")))


def test_counts_below_one_are_refused_by_their_flag_name():
    require_at_least_one(threads=1, max_frames=None, runs=30)  # None: not given
    with pytest.raises(UserError, match=r"^--max-frames must be at least 1, got 0$"):
        require_at_least_one(threads=2, max_frames=0, runs=-1)
