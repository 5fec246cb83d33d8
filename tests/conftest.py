"""Fixtures shared across the test suite."""
from __future__ import annotations

from pathlib import Path

import pytest

from conversion.parity_fixture import DATASET, FIXTURE, INPUT_SIZE, suite_export

TINY_DATASET = DATASET
TINY_INPUT_SIZE = INPUT_SIZE


@pytest.fixture(scope="session")
def parity_student() -> Path:
    """The committed MobileNetV2-Lite student every parity test converts (see
    conversion/parity_fixture.py: how it was trained, why it is committed, how it is
    regenerated, and how we know its predictions are confident)."""
    if not FIXTURE.is_file():
        pytest.fail(f"the parity fixture {FIXTURE} is missing; regenerate it with "
                    f"`python -m tests.parity_fixture`")
    return FIXTURE


def run_suite_export(name: str, checkpoint: Path, out: Path) -> Path:
    """The suite's export `name` (conversion.parity_fixture.SUITE_EXPORTS) of `checkpoint`
    into `out`; every artifact must pass its gate (conversion.export would exit 1)."""
    from conversion.pipeline import ExportRun
    result = ExportRun(suite_export(name, checkpoint, out)).run()
    refused = [entry["file"] for entry in result["entries"] if not entry["passed"]]
    assert not refused, f"the gate refused {refused} (see {out}/parity.md)"
    return out


@pytest.fixture(scope="session")
def exported_student(parity_student, tmp_path_factory) -> Path:
    """The fixture exported once for the session with SUITE_EXPORTS['all'] (ONNX, TFLite,
    CoreML); the tests reopen the artifacts themselves."""
    return run_suite_export("all", parity_student,
                            tmp_path_factory.mktemp("export") / "artifacts")
