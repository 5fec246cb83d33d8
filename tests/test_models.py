"""Model zoo: shapes, real output stride, error messages, weights loading."""
import pytest
import torch

from training.errors import UserError
from training.models import STUDENTS, TEACHER, build_model, list_models, validate_input_size

SIZE = (64, 128)


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("name", list_models())
def test_logits_match_input_size_and_feature_stride(name, output_stride):
    model = build_model(name, num_classes=3, output_stride=output_stride).eval()
    x = torch.rand(2, 3, *SIZE)
    with torch.no_grad():
        logits = model(x)
        parts = model.forward_all(x)
    assert logits.shape == (2, 3, *SIZE)
    lowres = parts["logits_lowres"]
    assert (SIZE[0] // lowres.shape[-2], SIZE[1] // lowres.shape[-1]) == (output_stride,) * 2
    torch.testing.assert_close(parts["out"], logits)


def test_teacher_aux_head_and_arch_record():
    model = build_model(TEACHER, num_classes=5, aux_loss=True).eval()
    with torch.no_grad():
        parts = model.forward_all(torch.rand(1, 3, *SIZE))
    assert parts["aux"].shape == (1, 5, *SIZE)
    rebuilt = build_model(**model.arch)
    assert rebuilt.aux_classifier is not None
    assert rebuilt.state_dict().keys() == model.state_dict().keys()


def test_students_are_smaller_than_teacher():
    sizes = {name: sum(p.numel() for p in build_model(name, num_classes=19).parameters())
             for name in (TEACHER, *STUDENTS)}
    assert all(sizes[s] < sizes[TEACHER] for s in STUDENTS)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="deeplabv3_vgg", num_classes=3), "unknown model"),
    (dict(name=TEACHER, num_classes=3, output_stride=32), "output stride must be 8 or 16"),
    (dict(name=TEACHER, num_classes=1), "num_classes must be at least 2"),
])
def test_bad_model_arguments(kwargs, message):
    with pytest.raises(UserError, match=message):
        build_model(**kwargs)


def test_input_size_must_divide_by_stride():
    validate_input_size((64, 128), 16)
    with pytest.raises(UserError, match="not divisible by the output stride 16"):
        validate_input_size((60, 128), 16)


def test_local_backbone_weights_load_and_bad_files_are_refused(tmp_path):
    import torchvision
    reference = torchvision.models.mobilenet_v2(weights=None)
    good = tmp_path / "mnv2.pth"
    torch.save(reference.state_dict(), good)
    model = build_model("deeplabv3lite_mobilenetv2", num_classes=3, backbone_weights=str(good))
    first_conv = model.backbone.features[0][0].weight
    torch.testing.assert_close(first_conv, reference.features[0][0].weight)

    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(UserError, match="cannot read backbone weights"):
        build_model("deeplabv3lite_mobilenetv2", num_classes=3, backbone_weights=str(corrupt))
    with pytest.raises(UserError, match="not found"):
        build_model(TEACHER, num_classes=3, backbone_weights=str(tmp_path / "missing.pth"))
    with pytest.raises(UserError, match="do not fit this backbone"):
        build_model("deeplabv3lite_resnet18", num_classes=3, backbone_weights=str(good))


def test_imagenet_offline_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(UserError, match=r"Place resnet18-f37072fd\.pth in .*checkpoints"):
        build_model("deeplabv3lite_resnet18", num_classes=3, backbone_weights="imagenet")
