"""The demo apps expect what conversion.export writes.

The apps declare their expectations once, in their own source (android_demo's AppContract.kt,
ios_demo's AppContract.swift; parsed by conversion/apps.py). These tests hold
them against conversion/contract.py, against the file names and I/O blocks the exporters
produce (one real TFLite export of the tiny trained student), and they re-derive the
committed golden vectors with today's conversion code so the vectors cannot go stale.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conversion import contract as contracts
from conversion import apps, coreml_export
from conversion.tflite_export import file_suffix
from training.models import STUDENTS

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "android_demo" / "tools"
STUDENT = "deeplabv3lite_mobilenetv2"


KOTLIN = apps.kotlin_constants()
SWIFT = apps.swift_constants()
GOLDEN = apps.GOLDEN_DIR


def test_both_apps_read_the_schema_version_conversion_writes():
    assert KOTLIN["SUPPORTED_SCHEMA_VERSION"] == contracts.SCHEMA_VERSION
    assert SWIFT["supportedSchemaVersion"] == contracts.SCHEMA_VERSION


def test_asset_names_follow_the_exporters_naming():
    assert STUDENT in STUDENTS
    assert KOTLIN["MODEL_ASSET"] == f"{STUDENT}_{file_suffix('int8')}.tflite"
    assert KOTLIN["CONTRACT_SUFFIX"] == SWIFT["contractSuffix"] == contracts.SUFFIX
    assert KOTLIN["CONTRACT_ASSET"] == contracts.contract_path(KOTLIN["MODEL_ASSET"]).name
    assert SWIFT["modelPackage"] == f"{STUDENT}_{coreml_export.SUFFIXES['fp16']}.mlpackage"
    assert SWIFT["modelResource"] == Path(SWIFT["modelPackage"]).stem
    assert SWIFT["contractResource"] == contracts.contract_path(SWIFT["modelPackage"]).name


def test_ios_accepts_the_coreml_io_blocks_the_exporter_describes():
    for kind in ("image", "tensor"):
        for fold_argmax in (False, True):
            inp, out = coreml_export._specs(kind, (64, 128), False, fold_argmax, 19)
            assert inp["kind"] in SWIFT["inputKinds"].split(",")
            assert inp["layout"] in SWIFT["inputLayouts"].split(",")
            assert inp["dtype"] in SWIFT["inputDtypes"].split(",")
            assert out["layout"] in SWIFT["outputLayouts"].split(",")
            assert out["dtype"] in SWIFT["outputDtypes"].split(",")


# ---- the committed golden vectors -------------------------------------------------------

@pytest.fixture(scope="module")
def golden():
    meta = json.loads((GOLDEN / "golden.json").read_text())
    contract = contracts.validate(json.loads((GOLDEN / "contract.json").read_text()))

    def array(entry):
        return np.frombuffer((GOLDEN / entry["file"]).read_bytes(),
                             entry["dtype"]).reshape(entry["shape"])
    return {"meta": meta, "contract": contract, "frame": array(meta["input"]),
            "tensor": array(meta["input_tensor"]), "raw": array(meta["output"]),
            "expected": array(meta["expected"])}


def test_golden_files_are_small_and_unchanged(golden):
    total = sum(p.stat().st_size for p in GOLDEN.iterdir())
    assert total < 1_000_000
    import hashlib
    for name, digest in golden["meta"]["sha256"].items():
        assert hashlib.sha256((GOLDEN / name).read_bytes()).hexdigest() == digest, name


def test_golden_contract_is_the_apps_model_and_validates_today(golden):
    contract = golden["contract"]  # validated against conversion.contract.SCHEMA
    assert contract["artifact"]["file"] == KOTLIN["MODEL_ASSET"]
    assert contract["input"]["layout"] == KOTLIN["INPUT_LAYOUT"]
    assert contract["input"]["dtype"] == "int8"
    assert contract["output"]["dtype"] == "int8" and contract["output"]["semantics"] == "logits"


def test_golden_vectors_still_follow_conversions_own_pre_and_post_processing(golden):
    """If prepare_input/read_output change meaning, the apps' goldens must be regenerated."""
    contract = golden["contract"]
    tensor = contracts.prepare_input(golden["frame"][None], contract["input"])
    np.testing.assert_array_equal(tensor, golden["tensor"])
    classes = contracts.read_output(golden["raw"], contract["output"]).argmax(1)[0]
    np.testing.assert_array_equal(classes, golden["expected"])
    assert len(np.unique(classes)) >= 3


# ---- one real export (the session's, tests/conftest.py) ---------------------------------

def test_a_real_export_writes_the_assets_the_android_app_reads(exported_student):
    model = exported_student / KOTLIN["MODEL_ASSET"]
    assert model.is_file(), sorted(p.name for p in exported_student.iterdir())
    assert (exported_student / KOTLIN["CONTRACT_ASSET"]).is_file()
    contract = contracts.load_contract(model)
    assert contract["schema_version"] == KOTLIN["SUPPORTED_SCHEMA_VERSION"]
    assert contract["artifact"]["file"] == KOTLIN["MODEL_ASSET"]
    assert contract["input"]["layout"] == KOTLIN["INPUT_LAYOUT"]
    assert contract["input"]["dtype"] in KOTLIN["INPUT_DTYPES"].split(",")
    assert contract["input"]["kind"] == "tensor" and contract["input"]["color"] == "RGB"
    assert contract["output"]["layout"] in KOTLIN["OUTPUT_LAYOUTS"].split(",")
    assert contract["output"]["dtype"] in KOTLIN["OUTPUT_DTYPES"].split(",")
    golden = json.loads((GOLDEN / "contract.json").read_text())
    for block in ("input", "output"):  # same structure as the golden the Kotlin tests parse
        assert set(contract[block]) == set(golden[block])
        assert contract[block]["layout"] == golden[block]["layout"]
        assert contract[block]["dtype"] == golden[block]["dtype"]


def test_copy_assets_takes_the_latest_export_into_the_app(exported_student, tmp_path):
    dest = tmp_path / "assets"
    apps.copy("android", exported_student.parent, dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted([KOTLIN["MODEL_ASSET"],
                                                              KOTLIN["CONTRACT_ASSET"]])
    assert (dest / KOTLIN["MODEL_ASSET"]).read_bytes() == \
        (exported_student / KOTLIN["MODEL_ASSET"]).read_bytes()


def test_copy_assets_refuses_with_one_clear_line(tmp_path, golden):
    with pytest.raises(apps.AssetError, match="no deeplabv3lite_mobilenetv2_int8.tflite"):
        apps.copy("android", tmp_path, tmp_path / "assets")
    export_dir = tmp_path / "artifacts" / "future"
    export_dir.mkdir(parents=True)
    (export_dir / KOTLIN["MODEL_ASSET"]).write_bytes(b"not a model")
    future = dict(golden["contract"], schema_version=contracts.SCHEMA_VERSION + 1)
    (export_dir / KOTLIN["CONTRACT_ASSET"]).write_text(json.dumps(future))
    with pytest.raises(apps.AssetError, match="schema_version"):
        apps.copy("android", tmp_path / "artifacts", tmp_path / "assets")
    assert not (tmp_path / "assets").exists()
