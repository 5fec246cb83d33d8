"""Incremental learning: Fisher, EWC penalty, replay memory, class extension, the CLI's errors."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from training.checkpoint import dataset_record, load_checkpoint, make_checkpoint, \
    model_from_checkpoint
from training.config import DEFAULTS
from training.continual.classes import extend_class_list, grow_classifier
from training.continual.ewc import ContinualTask, estimate_fisher, ewc_penalty
from training.data import eval_transforms, parse_dataset_spec
from training.errors import UserError, run_cli
from training.continual.increment import increment
from training.incremental import main
from training.io import atomic_save
from training.models import build_model
from training.continual.replay import ReplayMemory, select_class_balanced

SPEC = "synthetic:size=64x128,train=8,val=4,seed=0"
NEW = "synthetic:size=64x128,train=8,val=4,seed=1,condition=fog+rain"
WITHHELD = ["truck", "bus"]
TRAINING = dict(epochs=1, batch_size=4, workers=0, progress=False, device="cpu")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(num_classes: int = 19, **kwargs):
    torch.manual_seed(0)
    return build_model("deeplabv3lite_mobilenetv2", num_classes=num_classes, **kwargs).eval()


def _images(count: int = 4) -> torch.Tensor:
    data = parse_dataset_spec(SPEC).build("train", eval_transforms((64, 128)))
    return torch.stack([data[i][0].as_subclass(torch.Tensor) for i in range(count)])


@pytest.fixture
def withheld_checkpoint(tmp_path):
    """An (untrained) checkpoint of a model that never learnt WITHHELD: 17 classes."""
    spec = parse_dataset_spec(SPEC)
    record = dataset_record(spec)
    keep = [i for i, name in enumerate(spec.class_names) if name not in WITHHELD]
    record.update(class_names=[spec.class_names[i] for i in keep],
                  palette=[record["palette"][i] for i in keep], num_classes=len(keep))
    config = dict(DEFAULTS, dataset=SPEC, input_size=[64, 128])
    path = tmp_path / "base" / "best.pth"
    atomic_save(make_checkpoint(_model(len(keep)), record, config, history=[]), path)
    return path


def test_fisher_is_non_negative_and_not_all_zero():
    images = _images()
    fisher = estimate_fisher(_model(), DataLoader(list(zip(images, images)), batch_size=2))
    values = torch.cat([f.flatten() for f in fisher.values()])
    assert (values >= 0).all() and values.max() > 0


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_with_distance():
    model = _model()
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    fisher = {n: torch.rand_like(p) for n, p in model.named_parameters()}
    assert float(ewc_penalty(model, fisher, anchor).detach()) == 0.0
    direction = {n: torch.randn_like(p) for n, p in anchor.items()}
    penalties = []
    for step in (0.001, 0.01, 0.1):
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                parameter.copy_(anchor[name] + step * direction[name])
        penalties.append(float(ewc_penalty(model, fisher, anchor).detach()))
    assert 0 < penalties[0] < penalties[1] < penalties[2]


def test_class_balanced_selection_takes_the_rare_class():
    presence = torch.zeros(50, 4, dtype=torch.bool)
    presence[:, :2] = True         # every image: classes 0 and 1
    presence[::10, 2] = True       # five images: class 2
    presence[37, 3] = True         # one image: class 3
    chosen = select_class_balanced(presence, 3)
    assert len(chosen) == 3 and 37 in chosen
    assert presence[chosen, 2].any()


def test_replay_memory_holds_at_most_n_and_shares_slots_between_tasks():
    spec = parse_dataset_spec(SPEC)
    memory = ReplayMemory.from_dataset(spec.build("train"), 3, 19, 255, (32, 64))
    assert len(memory) == 3 and memory.images.dtype == torch.uint8
    assert memory.images.shape[-2:] == (32, 64) and memory.masks.shape[-2:] == (32, 64)
    grown = memory.add_task(parse_dataset_spec(NEW).build("train"), task=1)
    assert len(grown) == 3 and set(grown.tasks.tolist()) == {0, 1}
    restored = ReplayMemory.from_state(grown.state())
    assert torch.equal(restored.masks, grown.masks) and restored.capacity == 3
    # every class of the pool that fits is covered: more distinct classes than random picks
    assert int((memory.class_counts() > 0).sum()) >= 10


def test_class_extension_keeps_old_logits_identical():
    names = parse_dataset_spec(SPEC).class_names
    old = [n for n in names if n not in WITHHELD]
    model = _model(len(old), aux_loss=True)
    images = _images(2)
    with torch.no_grad():
        before = model.forward_all(images)
    classes = extend_class_list(old, WITHHELD, names)
    assert classes == names  # the dataset's order comes back
    positions = grow_classifier(model, old, classes)
    with torch.no_grad():
        after = model.forward_all(images)
    assert after["out"].shape[1] == 19 and model.arch["num_classes"] == 19
    assert torch.equal(after["out"][:, positions], before["out"])
    assert torch.equal(after["aux"][:, positions], before["aux"])


def test_lwf_term_is_zero_right_after_growth():
    names = parse_dataset_spec(SPEC).class_names
    old = [n for n in names if n not in WITHHELD]
    model = _model(len(old))
    old_model = _model(len(old))
    positions = grow_classifier(model, old, names)
    task = ContinualTask(model, old_model=old_model, old_positions=positions).eval()
    masks = torch.full((2, 64, 128), 255, dtype=torch.long)
    masks[:, :8] = 0
    losses = task(_images(2), masks)
    assert float(losses["kd_loss"]) == pytest.approx(0.0, abs=1e-6)


def test_incremented_checkpoint_loads_and_exports_to_onnx(withheld_checkpoint, tmp_path):
    result = increment(withheld_checkpoint, NEW, "ewc+replay", tmp_path / "step1",
                       new_classes=WITHHELD, memory=4, fisher_images=4, **TRAINING)
    checkpoint = load_checkpoint(result["checkpoint"])  # weights_only=True inside
    assert checkpoint["dataset"]["class_names"] == parse_dataset_spec(SPEC).class_names
    assert len(checkpoint["dataset"]["palette"]) == 19
    assert [e["method"] for e in checkpoint["history"]] == ["train", "ewc+replay"]
    assert checkpoint["history"][1]["classes_added"] == WITHHELD
    assert len(checkpoint["replay"]["images"]) <= 4
    assert checkpoint["replay"]["masks"][checkpoint["replay"]["masks"] != 255].max() < 19
    fisher = checkpoint["ewc"]["fisher"]
    assert all(fisher[n].shape == p.shape for n, p in checkpoint["model"].items() if n in fisher)
    model = model_from_checkpoint(checkpoint)
    assert model.num_classes == 19
    # The same export path as conversion.export, so the grown classifier ships like any model.
    from conversion.onnx_export import DeployWrapper, export_onnx
    onnx_path = export_onnx(DeployWrapper(model), tmp_path / "model.onnx", (64, 128))
    onnx = pytest.importorskip("onnx")
    onnx.checker.check_model(onnx.load(str(onnx_path)))


def test_new_class_clashing_with_an_old_one_is_refused():
    with pytest.raises(UserError, match="already exists"):
        extend_class_list(["road", "car"], ["car"], ["road", "car"])


def test_memory_larger_than_the_old_data_is_refused(withheld_checkpoint, tmp_path):
    with pytest.raises(UserError, match="--memory 100 must be between 1 and the 8 images"):
        increment(withheld_checkpoint, NEW, "replay", tmp_path / "x", memory=100,
                  new_classes=WITHHELD, **TRAINING)


def test_undeclared_labels_in_new_data_are_one_line_errors(withheld_checkpoint, tmp_path,
                                                           capsys):
    argv = ["--checkpoint", str(withheld_checkpoint), "--new-data", NEW, "--method", "finetune",
            "--out", str(tmp_path / "x"), "--no-progress"]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "neither a model class" in error
    assert "'truck'" in error or "'bus'" in error
