"""Fixtures shared across the test suite."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.parity_fixture import DATASET, FIXTURE, INPUT_SIZE, SUITE_EXPORTS

TINY_DATASET = DATASET
TINY_INPUT_SIZE = INPUT_SIZE


@pytest.fixture(scope="session")
def parity_student() -> Path:
    """The committed MobileNetV2-Lite student every parity test converts (see
    tests/parity_fixture.py: how it was trained, why it is committed, how it is regenerated,
    and how we know its predictions are confident)."""
    if not FIXTURE.is_file():
        pytest.fail(f"the parity fixture {FIXTURE} is missing; regenerate it with "
                    f"`python -m tests.parity_fixture`")
    return FIXTURE


@pytest.fixture(scope="session")
def exported_student(parity_student, tmp_path_factory) -> Path:
    """The fixture exported once for the session with SUITE_EXPORTS['all'] (ONNX, TFLite,
    CoreML); the tests reopen the artifacts themselves."""
    from conversion import export
    out = tmp_path_factory.mktemp("export") / "artifacts"
    export.main(SUITE_EXPORTS["all"] + ["--checkpoint", str(parity_student), "--out", str(out)])
    return out
