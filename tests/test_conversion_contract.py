"""The model contract schema, its validator, and the contract-driven pre/post-processing."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from conversion import contract as contracts
from conversion.calibration import anchor_pixel_range
from conversion.parity import parse_thresholds
from training.errors import UserError
from training.preprocessing import MEAN, STD


def good_contract() -> dict:
    return {
        "schema_version": contracts.SCHEMA_VERSION,
        "artifact": {"file": "m_int8.tflite", "target": "tflite", "precision": "int8",
                     "size_bytes": 1000, "sha256": "a" * 64},
        "input": {"name": "image", "shape": [1, 4, 6, 3], "layout": "NHWC", "dtype": "int8",
                  "color": "RGB", "kind": "tensor",
                  "normalization": {"in_model": False, "pixel_scale": 1 / 255,
                                    "mean": list(MEAN), "std": list(STD)},
                  "quantization": {"scale": 0.02, "zero_point": -10}},
        "output": {"name": "logits", "shape": [1, 4, 6, 3], "layout": "NHWC", "dtype": "int8",
                   "semantics": "logits", "quantization": {"scale": 0.1, "zero_point": 2}},
        "classes": {"num_classes": 3, "names": ["a", "b", "c"],
                    "palette": [[0, 0, 0], [1, 2, 3], [255, 255, 255]], "ignore_index": 255},
        "source": {"checkpoint": "x.pth", "checkpoint_sha256": "b" * 64, "arch": {},
                   "dataset": "synthetic"},
        "export": {"input_size": [4, 6], "fold_normalization": False, "fold_argmax": False,
                   "calibration": None, "tools": {}, "created": "2026-01-01T00:00:00+00:00"},
        "parity": {"reference": "pytorch-fp32", "images": 4, "held_out": {}, "agreement": 0.99,
                   "max_abs_err": 0.1, "miou_artifact": 50.0, "miou_reference": 50.5,
                   "latency_ms": 1.0, "threads": 2, "passed": True, "skipped": None},
    }


def test_a_good_contract_validates():
    assert contracts.validate(good_contract())["schema_version"] == contracts.SCHEMA_VERSION


@pytest.mark.parametrize("break_it, message", [
    (lambda c: c.pop("parity"), "contract.parity: missing"),
    (lambda c: c["input"].update(layout="HWC"), "contract.input.layout"),
    (lambda c: c["input"].update(quantization=None), "needs its quantization"),
    (lambda c: c["classes"]["palette"].pop(), "one colour per class"),
    (lambda c: c["classes"].update(ignore_index=1), "must not be a class index"),
    (lambda c: c["source"].update(checkpoint_sha256="nope"), "does not match"),
    (lambda c: c["output"].update(semantics="probabilities"), "contract.output.semantics"),
    (lambda c: c["output"].update(shape=[1, 4, 6, 5]), "no axis of 3 classes"),
    (lambda c: c["artifact"].update(colour="red"), "unknown field"),
    (lambda c: c.update(schema_version=99), "must be 1"),
    (lambda c: c["parity"].update(agreement=float("nan")), "expected number"),
])
def test_broken_contracts_are_refused_with_the_reason(break_it, message):
    contract = copy.deepcopy(good_contract())
    break_it(contract)
    with pytest.raises(contracts.ContractError, match="invalid model contract") as error:
        contracts.validate(contract)
    assert message in str(error.value)


def test_the_committed_json_schema_is_the_one_the_validator_uses():
    path = Path(contracts.__file__).with_name("model_contract.schema.json")
    committed = json.loads(path.read_text())
    assert {k: v for k, v in committed.items() if not k.startswith("$") and k != "title"} \
        == json.loads(json.dumps(contracts.SCHEMA))


def test_write_and_load_round_trip(tmp_path):
    artifact = tmp_path / "m_int8.tflite"
    artifact.write_bytes(b"x")
    path = contracts.write_contract(artifact, good_contract())
    assert path.name == "m_int8.tflite.json"
    assert contracts.load_contract(artifact) == good_contract()


def test_prepare_input_normalises_transposes_and_quantizes_as_documented():
    spec = good_contract()["input"]
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 6, 3), dtype=np.uint8)
    q = contracts.prepare_input(frames, spec)
    assert q.dtype == np.int8 and q.shape == (2, 4, 6, 3)
    x = (frames / 255.0 - np.array(MEAN)) / np.array(STD)
    expected = np.clip(np.round(x / 0.02) - 10, -128, 127)
    assert np.abs(q.astype(int) - expected).max() <= 1
    nchw = dict(spec, layout="NCHW", dtype="float32", quantization=None)
    assert np.allclose(contracts.prepare_input(frames, nchw), x.transpose(0, 3, 1, 2),
                       atol=1e-5)
    folded = dict(spec, dtype="uint8", quantization=None,
                  normalization=dict(spec["normalization"], in_model=True))
    assert np.array_equal(contracts.prepare_input(frames, folded), frames)


def test_read_output_dequantizes_and_moves_classes_first():
    spec = good_contract()["output"]
    raw = np.arange(-5, 67, dtype=np.int8).reshape(1, 4, 6, 3)
    logits = contracts.read_output(raw, spec)
    assert logits.shape == (1, 3, 4, 6)
    assert np.allclose(logits, ((raw.astype(np.float32) - 2) * 0.1).transpose(0, 3, 1, 2))
    class_map = dict(spec, semantics="class_map", layout="NHW", dtype="uint8")
    assert contracts.read_output(np.ones((1, 4, 6), np.uint8), class_map).dtype == np.int64


def test_read_classes_is_the_argmax_of_the_dequantized_logits_ties_included():
    spec = good_contract()["output"]  # int8 NHWC logits, scale 0.1, zero point 2
    rng = np.random.default_rng(0)
    raw = rng.integers(-128, 128, (2, 5, 7, 19)).astype(np.int8)
    raw[0, 0, 0, :] = 7  # a 19-way tie: both take the first class
    raw[1, 2, 3, [4, 9]] = 127  # a two-way tie at the top
    expected = contracts.read_output(raw, spec).argmax(1)
    classes = contracts.read_classes(raw, spec)
    assert classes.shape == (2, 5, 7) and np.array_equal(classes, expected)
    assert classes[0, 0, 0] == 0 and classes[1, 2, 3] == 4
    nchw = dict(spec, layout="NCHW", quantization=None)
    logits = rng.normal(size=(1, 19, 5, 7)).astype(np.float32)
    assert np.array_equal(contracts.read_classes(logits, nchw), logits.argmax(1))


def test_thresholds_parse_over_the_defaults_and_refuse_nonsense():
    thresholds = parse_thresholds(["int8.agreement=0.98", "fp32.max_abs_err=1e-4"])
    assert thresholds["int8"] == {"agreement": 0.98, "miou_drop": 2.0}
    assert thresholds["fp32"] == {"agreement": 0.999, "max_abs_err": 1e-4}
    for bad in ("int8=0.9", "int4.agreement=1", "fp16.speed=1", "fp16.agreement=2",
                "fp16.agreement=high"):
        with pytest.raises(UserError, match="bad --threshold"):
            parse_thresholds([bad])


def test_anchored_calibration_spans_the_full_pixel_range():
    frames = np.full((3, 8, 8, 3), 100, np.uint8)
    anchored = anchor_pixel_range(frames)
    assert anchored.min() == 0 and anchored.max() == 255
    assert (anchored != frames).sum() == 3 * 2 * 3 and frames.max() == 100
