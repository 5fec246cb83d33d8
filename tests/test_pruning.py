"""Pruning: smaller dense students, exact sparsity, distinct criteria, loadable checkpoints."""
from __future__ import annotations

import warnings

import onnx
import pytest
import torch

from conversion.onnx_export import DeployWrapper, export_onnx
from training import prune as prune_cli
from training.checkpoint import dataset_record, make_checkpoint, model_from_checkpoint
from training.config import DEFAULTS
from training.data import parse_dataset_spec
from training.errors import UserError
from training.io import atomic_save
from training.models import STUDENTS, build_model, count_parameters
from training.profiling import count_flops
from training.compression.pruning import prune, sparsity

SIZE = (64, 128)
DATASET = "synthetic:size=64x128,train=8,val=4,test=0,seed=3"


@pytest.fixture(autouse=True)
def _quiet_single_thread():
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch-pruning's tracing warnings
        yield


def student(name: str = "deeplabv3lite_mobilenetv2", seed: int = 0):
    """An untrained student whose BN scales differ (fresh BNs are all 1: bn_scale would tie)."""
    torch.manual_seed(seed)
    model = build_model(name, num_classes=5)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.1, 1.0)
    return model.eval()


@pytest.mark.parametrize("name", STUDENTS)
def test_structured_half_shrinks_params_and_flops_and_still_exports(name, tmp_path):
    model = student(name)
    pruned = prune(model, "structured", "l1", 0.5, input_size=SIZE)
    assert count_parameters(pruned) < 0.5 * count_parameters(model)
    assert count_flops(pruned, SIZE) < 0.5 * count_flops(model, SIZE)
    x = torch.rand(1, 3, *SIZE)
    assert pruned(x).shape == (1, 5, *SIZE)  # the classes are never pruned
    path = export_onnx(DeployWrapper(pruned), tmp_path / "pruned.onnx", SIZE)
    output = onnx.load(str(path)).graph.output[0]
    assert [d.dim_value for d in output.type.tensor_type.shape.dim] == [1, 5, *SIZE]


@pytest.mark.parametrize("global_pruning", [False, True])
def test_unstructured_reaches_the_exact_sparsity(global_pruning):
    model = student()
    pruned = prune(model, "unstructured", "l1", 0.37, global_pruning=global_pruning)
    assert sparsity(pruned) == pytest.approx(0.37, abs=1e-5)
    assert not any("weight_orig" in key for key in pruned.state_dict())  # made permanent
    assert count_parameters(pruned) == count_parameters(model)  # same dense shapes
    assert sparsity(model) == 0  # the original is left alone


def _kept_channels(original: torch.Tensor, pruned: torch.Tensor) -> list[int]:
    """Indices of the original output channels that survived (rows are matched exactly)."""
    return [next(i for i, row in enumerate(original) if torch.equal(row, kept))
            for kept in pruned]


def test_importance_criteria_choose_different_channels():
    model = student()
    first = model.backbone.features[0][0].weight  # 32 channels, coupled with block 1
    batches = [(torch.rand(2, 3, *SIZE), torch.randint(0, 5, (2, *SIZE)))]
    kept = {}
    for criterion in ("l1", "l2", "taylor", "bn_scale", "random"):
        torch.manual_seed(1)
        pruned = prune(model, "structured", criterion, 0.5, input_size=SIZE, batches=batches)
        kept[criterion] = _kept_channels(first, pruned.backbone.features[0][0].weight)
        assert len(kept[criterion]) == 16
    chosen = {tuple(sorted(k)) for k in kept.values()}
    assert len(chosen) >= 4, kept  # l1 and l2 may agree on a layer; the others must not


def test_pruned_checkpoint_loads_through_the_normal_loader(tmp_path):
    pruned = prune(student(), "structured", "l2", 0.5, input_size=SIZE, global_pruning=True)
    spec = parse_dataset_spec(DATASET)
    path = tmp_path / "pruned.pth"
    atomic_save(make_checkpoint(pruned, dataset_record(spec), {}), path)
    loaded = model_from_checkpoint(path)
    assert loaded.arch == pruned.arch and "pruned" in loaded.arch
    x = torch.rand(1, 3, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), pruned.eval()(x))


def test_pruned_weights_without_the_recorded_shapes_are_refused(tmp_path):
    pruned = prune(student(), "structured", "l1", 0.5, input_size=SIZE)
    checkpoint = make_checkpoint(pruned, dataset_record(parse_dataset_spec(DATASET)), {})
    del checkpoint["arch"]["pruned"]
    with pytest.raises(UserError, match="arch\\['pruned'\\]"):
        model_from_checkpoint(checkpoint)


@pytest.mark.parametrize("argv, message", [
    (["--method", "structured", "--ratio", "1.0"], "strictly between 0 and 1"),
    (["--method", "structured", "--ratio", "0"], "strictly between 0 and 1"),
    (["--method", "magic", "--ratio", "0.5"], "unknown pruning method"),
    (["--method", "structured", "--importance", "hessian", "--ratio", "0.5"],
     "unknown importance criterion"),
])
def test_bad_input_is_one_line_error(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        prune_cli.run_cli(prune_cli.main, ["--checkpoint", str(tmp_path / "x.pth"), *argv])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and message in error and "\n" not in error


def test_cli_prunes_and_finetunes_with_distillation(tmp_path):
    """The recovery path: the training loop, started from the pruned model, with a teacher."""
    spec = parse_dataset_spec(DATASET)
    config = dict(DEFAULTS, dataset=DATASET, input_size=list(SIZE), batch_size=4, workers=0,
                  lr=1e-3, model="deeplabv3lite_mobilenetv2", output_dir=str(tmp_path),
                  progress=False)
    source = tmp_path / "student.pth"
    model = build_model("deeplabv3lite_mobilenetv2", num_classes=spec.num_classes)
    atomic_save(make_checkpoint(model, dataset_record(spec), config), source)
    out = tmp_path / "pruned.pth"
    result = prune_cli.main(["--checkpoint", str(source), "--method", "structured",
                             "--ratio", "0.3", "--finetune-epochs", "1", "--teacher",
                             str(source), "--out", str(out)])
    assert result["params_after"] < result["params_before"]
    loaded = model_from_checkpoint(out)
    assert count_parameters(loaded) == result["params_after"]
    assert torch.load(out, weights_only=True)["epoch"] >= 1  # went through the trainer
    # A pruned run resumes with its own shapes (fit.run rebuilds it from the checkpoint).
    from training import train
    summary = train.main(["--resume", str(tmp_path / "pruned_finetune" / "last.pth"),
                          "--epochs", "2"])
    assert count_parameters(model_from_checkpoint(summary["last"])) == result["params_after"]


def test_the_aux_head_is_coupled_and_keeps_its_classes():
    model = build_model("deeplabv3lite_mobilenetv2", num_classes=5, aux_loss=True).eval()
    pruned = prune(model, "structured", "l1", 0.5, input_size=SIZE)
    outputs = pruned.forward_all(torch.rand(1, 3, *SIZE))
    assert outputs["aux"].shape == outputs["out"].shape == (1, 5, *SIZE)
    assert pruned.aux_classifier[0][0].in_channels < model.aux_classifier[0][0].in_channels
