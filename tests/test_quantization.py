"""Int8 simulation: TFLite's weight grid, calibrated PTQ, a QAT step that still exports."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from conversion.onnx_export import DeployWrapper, export_onnx
from training import quantize as quantize_cli
from training.models import STUDENTS, build_model
from training.compression.quantization import attach, fake_quant_weight

SIZE = (64, 128)


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_weights_sit_on_a_symmetric_per_channel_int8_grid():
    weight = torch.randn(8, 4, 3, 3)
    quantized = fake_quant_weight(weight)
    scale = weight.abs().flatten(1).amax(1) / 127
    levels = quantized.flatten(1) / scale[:, None]
    torch.testing.assert_close(levels, levels.round(), atol=1e-3, rtol=0)
    assert levels.abs().max() <= 127 + 1e-3
    assert ((quantized - weight).abs().flatten(1) <= scale[:, None] / 2 + 1e-6).all()


@pytest.mark.parametrize("name", STUDENTS)
def test_calibrated_ptq_stays_close_and_detach_restores_the_model(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5).eval()
    x = torch.rand(2, 3, *SIZE)
    with torch.no_grad():
        reference = model(x)
        sim = attach(model).calibrate([x])
        simulated = model(x)
        assert not torch.equal(simulated, reference)  # something is quantized
        agreement = (simulated.argmax(1) == reference.argmax(1)).float().mean()
        assert agreement > 0.9
        sim.detach()
        torch.testing.assert_close(model(x), reference, rtol=0, atol=0)


def test_a_qat_step_runs_and_the_model_still_exports(tmp_path):
    torch.manual_seed(0)
    model = build_model("deeplabv3lite_mobilenetv2", num_classes=5)
    keys = set(model.state_dict())
    images, masks = torch.rand(2, 3, *SIZE), torch.randint(0, 5, (2, *SIZE))
    sim = attach(model).calibrate([images])
    model.train()
    before = model.classifier[-1].weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(images), masks)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    optimizer.step()
    assert not torch.equal(model.classifier[-1].weight, before)
    model = sim.detach().eval()
    assert set(model.state_dict()) == keys  # a normal checkpoint, a normal export
    path = export_onnx(DeployWrapper(model), tmp_path / "qat.onnx", SIZE)
    assert path.stat().st_size > 0


def test_unknown_mode_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        quantize_cli.run_cli(quantize_cli.main, ["--checkpoint", str(tmp_path / "x.pth"),
                                                 "--mode", "dynamic"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "unknown quantization mode 'dynamic'" in error and "\n" not in error


def test_pt2e_static_ptq_quantizes_and_keeps_a_trained_models_predictions(parity_student):
    from torch.utils.data import DataLoader

    from training.checkpoint import load_checkpoint, model_from_checkpoint
    from training.compression.pt2e import quantize_static
    checkpoint = load_checkpoint(parity_student)
    model = model_from_checkpoint(checkpoint).eval()
    from training.compression.runs import first_batches, loaders
    train, val, spec = loaders(checkpoint)
    calibration = first_batches(train, 2)
    quantized = quantize_static(model, calibration, example=calibration[0][0])
    ops = {str(node.target) for node in quantized.graph.graph.nodes}
    assert any("quantize_per_tensor" in op for op in ops)
    assert any("dequantize_per_channel" in op for op in ops)  # per-channel weights
    images = next(iter(DataLoader(val.dataset, batch_size=5)))[0]  # not the exported batch
    with torch.no_grad():
        reference, int8 = model(images), quantized.eval()(images)
    assert int8.shape == reference.shape
    assert not torch.equal(int8, reference)
    assert len(reference.argmax(1).unique()) >= 3  # a trained model: several classes
    assert (int8.argmax(1) == reference.argmax(1)).float().mean() > 0.95
