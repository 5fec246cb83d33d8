"""Compression runs on checkpoints: prune and fine-tune, measure int8 PTQ, train QAT.

    result = prune_checkpoint("S.pth", "structured", "l1", 0.4, finetune_epochs=5, teacher="T.pth")
    miou = measure_int8("S.pth", calib_batches=4)            # fp32, TFLite-scheme int8, PT2E int8
    result = quantization_aware_training("S.pth", epochs=3, teacher="T.pth", out="S_qat.pth")

`python -m training.prune`, `python -m training.quantize` and benchmarks.compression_sweep run
these. Recovery and QAT fine-tuning reuse the training loop (`training.fit.run`) with the
checkpoint's own config, distilling from `teacher` when given (supervised otherwise).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from training.checkpoint import context, load_checkpoint, make_checkpoint, model_from_checkpoint
from training.compression.pruning import freeze_zeros, prune, sparsity, validate
from training.compression.quantization import attach
from training.data import parse_dataset_spec
from training.data.transforms import eval_transforms
from training.errors import UserError, require_at_least_one
from training.validation import evaluate_model
from training.io import atomic_save, prepare_output_file
from training.models import count_parameters
from training.profiling import count_flops


def loaders(checkpoint: dict, path="the checkpoint"):
    """(train, held-out, spec) loaders of the checkpoint's own dataset at its input size."""
    ctx = context(checkpoint, path)
    spec = parse_dataset_spec(ctx.dataset)
    transform = eval_transforms(ctx.input_size)
    split = "val" if "val" in spec.splits else "test"
    return (DataLoader(spec.build("train", transform=transform), batch_size=ctx.batch_size),
            DataLoader(spec.build(split, transform=transform), batch_size=ctx.batch_size), spec)


def first_batches(loader, count: int) -> list:
    """The calibration set: the loader's first `count` batches, read once."""
    return [batch for _, batch in zip(range(count), loader)]


def _miou(model, val, spec) -> float:
    return evaluate_model(model, val, spec.num_classes, spec.ignore_index, progress=False)["miou"]


def int8_miou(model, calibration: list, val, spec) -> float:
    """Static PTQ of `model` (TFLite's scheme, calibrated on `calibration`), then its val mIoU."""
    sim = attach(model).calibrate(calibration)
    try:
        return _miou(model, val, spec)
    finally:
        sim.detach()


def pt2e_int8_miou(model, calibration: list, val, spec) -> float:
    """Static PTQ through PT2E (torchao's X86 quantizer), then its val mIoU."""
    from training.compression.pt2e import quantize_static
    quantized = quantize_static(model, calibration, example=calibration[0][0])
    return _miou(quantized, val, spec)


def measure_int8(checkpoint_path: str | Path, calib_batches: int = 4) -> dict:
    """fp32 mIoU and static-PTQ int8 mIoU two ways (TFLite-scheme simulation, PT2E)."""
    require_at_least_one(calib_batches=calib_batches)
    torch.manual_seed(0)
    checkpoint = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(checkpoint)
    train, val, spec = loaders(checkpoint, checkpoint_path)
    calibration = first_batches(train, calib_batches)
    return {"fp32_miou": _miou(model, val, spec),
            "ptq_int8_miou": int8_miou(model, calibration, val, spec),
            "pt2e_int8_miou": pt2e_int8_miou(model, calibration, val, spec)}


def _finetune(model, checkpoint: dict, epochs: int, teacher: str | None, lr: float | None,
              out: Path, run_name: str) -> dict:
    from training.fit import run
    config = dict(checkpoint["config"], epochs=epochs, output_dir=str(out.parent),
                  name=run_name, teacher=teacher or None)
    if lr is not None:
        config["lr"] = lr
    summary = run(config, distill=bool(teacher), initial_model=model)
    return load_checkpoint(summary["best"])


def _qat_start(checkpoint_path, out, suffix: str):
    """(out path, checkpoint, model, loaders) for a QAT run; the output is checked first."""
    out = Path(out) if out else Path(checkpoint_path).with_name(
        f"{Path(checkpoint_path).stem}_qat{suffix}")
    prepare_output_file(out, "--out")
    torch.manual_seed(0)
    checkpoint = load_checkpoint(checkpoint_path)
    return out, checkpoint, model_from_checkpoint(checkpoint), loaders(checkpoint,
                                                                       checkpoint_path)


def quantization_aware_training(checkpoint_path: str | Path, epochs: int = 1,
                                teacher: str | None = None, lr: float | None = None,
                                out: str | Path | None = None, calib_batches: int = 4) -> dict:
    """Fine-tune under the TFLite-scheme fake quantization (QuantSim) and save a plain fp32
    checkpoint whose weights are robust to int8; returns the mIoUs before and after."""
    out, checkpoint, model, (train, val, spec) = _qat_start(checkpoint_path, out, ".pth")
    calibration = first_batches(train, calib_batches)
    result = {"fp32_miou": _miou(model, val, spec),
              "ptq_int8_miou": int8_miou(model, calibration, val, spec)}
    sim = attach(model).calibrate(calibration)
    try:
        trained = _finetune(model, checkpoint, epochs, teacher,
                            lr or checkpoint["config"]["lr"] / 10, out, out.stem + "_run")
    finally:
        sim.detach()
    qat_model = model_from_checkpoint(trained)  # fp32 weights: the hooks never saved
    result["qat_fp32_miou"] = _miou(qat_model, val, spec)
    result["qat_int8_miou"] = int8_miou(qat_model, calibration, val, spec)
    trained["quantization"] = {"mode": "qat", "source": str(checkpoint_path), **result}
    atomic_save(trained, out)
    return {**result, "out": str(out)}


def pt2e_qat(checkpoint_path: str | Path, epochs: int = 1, teacher: str | None = None,
             lr: float | None = None, out: str | Path | None = None) -> dict:
    """QAT in PT2E (litert-torch's quantizer) and save the trained, converted model as a
    torch.export program (`OUT.pt2`) that `conversion.export --converter litert-torch
    --qat-program OUT.pt2` turns into int8 TFLite with the learned ranges, no calibration."""
    from training.compression.pt2e import OneByOne, qat_program
    from training.compression.programs import save_program
    out, checkpoint, model, (train, val, spec) = _qat_start(checkpoint_path, out, ".pt2")
    train = DataLoader(train.dataset, batch_size=train.batch_size, shuffle=True,
                       drop_last=True, generator=torch.Generator().manual_seed(0))
    teacher_model = model_from_checkpoint(teacher) if teacher else None
    program = qat_program(model, train, epochs, lr or checkpoint["config"]["lr"] / 10,
                          teacher=teacher_model, ignore_index=spec.ignore_index)
    save_program(program, out, checkpoint_path, context(checkpoint, checkpoint_path).input_size,
                 spec.num_classes)  # with the checkpoint's sha256: export checks it
    quantized = program.module()
    result = {"fp32_miou": _miou(model, val, spec),
              "qat_pt2e_int8_miou": _miou(OneByOne(quantized), val, spec), "out": str(out)}
    return result


def prune_checkpoint(checkpoint_path: str | Path, method: str, importance: str, ratio: float,
                     global_pruning: bool = False, round_to: int | None = None,
                     taylor_batches: int = 2, finetune_epochs: int = 0,
                     teacher: str | None = None, lr: float | None = None,
                     out: str | Path | None = None) -> dict:
    """Prune (then optionally fine-tune) a checkpoint and save it; returns the record."""
    validate(method, importance, ratio)
    if finetune_epochs < 0:
        raise UserError(f"--finetune-epochs must be >= 0, got {finetune_epochs}")
    if teacher and not finetune_epochs:
        raise UserError("--teacher is used for fine-tuning: add --finetune-epochs E")
    out = Path(out) if out else Path(checkpoint_path).with_name(
        f"{Path(checkpoint_path).stem}_{method}_{importance}_{ratio:g}.pth")
    prepare_output_file(out, "--out")
    torch.manual_seed(0)  # random importance and the taylor batches repeat
    checkpoint = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(checkpoint)
    input_size = context(checkpoint, checkpoint_path).input_size
    before = {"params": count_parameters(model), "flops": count_flops(model, input_size)}
    options = {"global_pruning": global_pruning}
    if method == "structured":
        options.update(input_size=input_size, round_to=round_to,
                       ignore_index=checkpoint["dataset"]["ignore_index"])
        if importance == "taylor":
            train, _, _ = loaders(checkpoint, checkpoint_path)
            options["batches"] = first_batches(train, taylor_batches)
    pruned = prune(model, method, importance, ratio, **options)
    record = {"method": method, "importance": importance, "ratio": ratio,
              "global": global_pruning, "source": str(checkpoint_path),
              "params_before": before["params"], "flops_before": before["flops"]}
    if finetune_epochs:
        if method == "unstructured":
            freeze_zeros(pruned)
        result = _finetune(pruned, checkpoint, finetune_epochs, teacher, lr, out,
                           out.stem + "_finetune")
        pruned = model_from_checkpoint(result)
    else:
        result = make_checkpoint(pruned, checkpoint["dataset"], checkpoint.get("config", {}),
                                 metrics=checkpoint.get("metrics", {}))
    record.update(params_after=count_parameters(pruned),
                  flops_after=count_flops(pruned, input_size), input_size=list(input_size))
    if method == "unstructured":
        record["sparsity"] = sparsity(pruned)
    result["pruning"] = record
    atomic_save(result, out)
    return {"out": str(out), **record}
