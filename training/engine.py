"""The training loop shared by `training.train` and `training.distill`.

One `Trainer` runs any task module (supervised or distillation) over a resumable sampler:
AdamW, per-step LR schedule (step decay, poly or cosine), gradient accumulation, autocast,
NaN/inf skipping, per-epoch validation, atomic `last.pth`/`best.pth`, metrics.csv and
TensorBoard, and a checkpoint on SIGINT/SIGTERM. Only rank 0 writes.

Besides val mIoU, each epoch logs a running *train* mIoU over the augmented batches it trained
on (read off the task's detached logits, no extra pass): the gap between the two tells
overfitting from underfitting.
"""
from __future__ import annotations

import math
import signal
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from training.checkpoint import make_checkpoint, restore_rng_state, rng_state
from training.distributed import DistInfo, barrier, broadcast_flag
from training.errors import UserError
from training.data.loader import collate_skipping_none
from training.history import EpochLog
from training.io import atomic_save
from training.metrics import confusion_matrix, iou_from_confusion
from training.sampling import ResumableSampler
from training.validation import evaluate_model


class TrainingDiverged(RuntimeError):
    pass


def build_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; no weight decay on BatchNorm parameters and biases (decaying them only hurts)."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def lr_factor_fn(config: dict, steps_per_epoch: int):
    """The learning-rate multiplier at each optimizer step: the paper's step decay (x gamma every
    `lr_step_epochs`), poly ((1 - t)^power, DeepLab's), or cosine (half a cosine to 0)."""
    total = config["epochs"] * steps_per_epoch
    if config["lr_schedule"] == "poly":
        return lambda step: max(1 - step / total, 0.0) ** config["poly_power"]
    if config["lr_schedule"] == "cosine":
        return lambda step: 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0)))
    step_epochs, gamma = config["lr_step_epochs"], config["lr_gamma"]
    return lambda step: gamma ** ((step // steps_per_epoch) // step_epochs)


class Trainer:
    def __init__(self, config: dict, task: nn.Module, model: nn.Module, train_set, val_set,
                 dataset_info: dict, run_dir: Path, device: torch.device,
                 dist_info: DistInfo = DistInfo()):
        self.config, self.task, self.model = config, task, model
        self.train_set, self.val_set = train_set, val_set
        self.dataset_info, self.run_dir, self.device, self.dist = dataset_info, run_dir, device, \
            dist_info
        self.batch_size, self.accum = int(config["batch_size"]), int(config["accum_steps"])
        self.sampler = ResumableSampler(len(train_set), config["seed"], shuffle=True,
                                        rank=dist_info.rank, world_size=dist_info.world_size)
        micro_batches = len(self.sampler) // self.batch_size
        if micro_batches == 0:
            raise UserError(f"batch size {self.batch_size} is larger than the "
                            f"{len(self.sampler)} training samples per process")
        if self.accum > micro_batches:
            raise UserError(f"accum_steps {self.accum} exceeds the {micro_batches} batches of an "
                            f"epoch: no optimizer step would ever happen")
        self.steps_per_epoch = micro_batches // self.accum
        if config.get("max_steps_per_epoch"):
            self.steps_per_epoch = min(self.steps_per_epoch, int(config["max_steps_per_epoch"]))
        self.optimizer = build_optimizer(model, config["lr"], config["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_factor_fn(config, self.steps_per_epoch))
        self.autocast_dtype = torch.bfloat16 if config["bf16"] else (
            torch.float16 if device.type == "cuda" else None)
        self.scaler = torch.amp.GradScaler(device.type,
                                           enabled=self.autocast_dtype == torch.float16)
        self.epoch, self.batches_done, self.global_step = 0, 0, 0
        self.best_miou, self.bad_steps, self.history = -1.0, 0, []
        self.stop_requested = False
        self.on_step = None  # test hook: called after every optimizer step
        self.epoch_stats: list[dict] = []
        self.writer = None
        self.epoch_log: EpochLog | None = None

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.accum * self.dist.world_size

    # -- state ---------------------------------------------------------------------------------
    def checkpoint(self, metrics: dict | None = None) -> dict:
        return make_checkpoint(
            self.model, self.dataset_info, self.config, optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(), scaler=self.scaler.state_dict(),
            epoch=self.epoch, batches_done=self.batches_done, global_step=self.global_step,
            best_miou=self.best_miou, bad_steps=self.bad_steps, rng=rng_state(),
            metrics=metrics or {}, history=self.history)

    def save(self, name: str, metrics: dict | None = None) -> None:
        if self.dist.is_main:
            atomic_save(self.checkpoint(metrics), self.run_dir / name)

    def restore(self, checkpoint: dict) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.epoch, self.batches_done = checkpoint["epoch"], checkpoint["batches_done"]
        self.global_step, self.best_miou = checkpoint["global_step"], checkpoint["best_miou"]
        self.bad_steps, self.history = checkpoint["bad_steps"], list(checkpoint["history"])
        restore_rng_state(checkpoint["rng"])

    # -- loop ----------------------------------------------------------------------------------
    def _loader(self, dataset, sampler, batch_size: int, drop_last: bool) -> DataLoader:
        workers = int(self.config["workers"])
        # Our own generator: otherwise creating the iterator draws a worker base seed from the
        # global RNG, and a resumed run (new iterator mid-epoch) would shift dropout's stream.
        generator = torch.Generator().manual_seed(int(self.config["seed"]) + self.epoch)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, generator=generator,
                          num_workers=workers, drop_last=drop_last,
                          pin_memory=self.device.type == "cuda",
                          persistent_workers=False, multiprocessing_context="fork"
                          if workers else None, collate_fn=collate_skipping_none)

    def _step_batch(self, batch) -> dict | None:
        """One micro-batch forward/backward; None when its loss is not finite."""
        images, masks, *extras = (t.to(self.device, non_blocking=True) for t in batch)
        if self.config["channels_last"]:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.bfloat16,
                            enabled=self.autocast_dtype is not None):
            losses = self.task(images, masks, *extras)
        logits = losses.pop("logits", None)
        if not torch.isfinite(losses["loss"]).item():
            return None
        if logits is not None:
            self.train_confusion += confusion_matrix(
                logits.argmax(1).cpu(), masks.cpu(), self.dataset_info["num_classes"],
                self.dataset_info["ignore_index"])
        self.scaler.scale(losses["loss"] / self.accum).backward()
        return {k: float(v.detach()) for k, v in losses.items()}

    def train_one_epoch(self) -> dict:
        self.task.train()
        skip = self.batches_done * self.batch_size * self.dist.world_size
        self.sampler.set_epoch(self.epoch, skip=skip)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(self.epoch)
        loader = self._loader(self.train_set, self.sampler, self.batch_size, drop_last=True)
        total_batches = self.steps_per_epoch * self.accum
        remaining = total_batches - self.batches_done
        bar = tqdm(total=total_batches, initial=self.batches_done, unit="batch", leave=False,
                   desc=f"epoch {self.epoch + 1}/{self.config['epochs']}",
                   disable=not (self.config["progress"] and self.dist.is_main))
        sums, count, window_ok, start = {}, 0, True, time.perf_counter()
        classes = self.dataset_info["num_classes"]
        self.train_confusion = torch.zeros(classes, classes, dtype=torch.int64)
        self.optimizer.zero_grad(set_to_none=True)
        for index, batch in enumerate(loader):
            if index >= remaining:
                break
            losses = self._step_batch(batch)
            window_ok = window_ok and losses is not None
            if losses is not None:
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + value
                count += 1
            self.batches_done += 1
            bar.update(1)
            if self.batches_done % self.accum:
                continue
            self._finish_window(window_ok)
            window_ok = True
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{sums.get('loss', math.nan) / max(count, 1):.3f}",
                            lr=f"{self.scheduler.get_last_lr()[0]:.2e}",
                            img_s=f"{count * self.batch_size / max(elapsed, 1e-9):.1f}")
            if self.on_step:
                self.on_step(self)
            if broadcast_flag(self.stop_requested, self.dist):
                bar.close()
                return {}
        bar.close()
        elapsed = time.perf_counter() - start
        stats = {k: v / max(count, 1) for k, v in sums.items()}
        skipped = getattr(getattr(self.train_set, "base", None), "skipped", 0)
        if skipped:  # --skip-corrupt replaced them by the next good sample
            tqdm.write(f"training skipped {skipped} corrupt sample(s) so far")
        stats.update(epoch_time_s=elapsed,
                     images_per_s=count * self.batch_size * self.dist.world_size / elapsed)
        if self.train_confusion.sum():  # this process's batches since the epoch (re)started
            stats["miou"] = float(iou_from_confusion(self.train_confusion).nanmean()) * 100
        return stats

    def _finish_window(self, window_ok: bool) -> None:
        """Apply (or, after a non-finite loss, drop) one accumulated optimizer step."""
        if window_ok:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.global_step += 1
            self.bad_steps = 0
        else:
            self.bad_steps += 1
            tqdm.write(f"warning: non-finite loss at epoch {self.epoch + 1} batch "
                       f"{self.batches_done}; step skipped ({self.bad_steps} in a row)")
            if self.bad_steps >= int(self.config["max_bad_steps"]):
                raise TrainingDiverged(
                    f"{self.bad_steps} non-finite losses in a row: stopping; the last good "
                    f"checkpoint is kept at {self.run_dir / 'last.pth'}")
        self.optimizer.zero_grad(set_to_none=True)

    def validate(self) -> dict:
        if self.val_set is None or not self.dist.is_main:
            return {}
        loader = self._loader(self.val_set, None, self.batch_size, drop_last=False)
        metrics = evaluate_model(self.model, loader, self.dataset_info["num_classes"],
                                 self.dataset_info["ignore_index"], self.device,
                                 self.autocast_dtype if self.autocast_dtype == torch.bfloat16
                                 else None, progress=self.config["progress"])
        skipped = getattr(self.val_set, "skipped", 0)
        if skipped:  # --skip-corrupt: left out of the metrics, counted here
            metrics["skipped_corrupt"] = skipped
            tqdm.write(f"validation left out {skipped} corrupt image(s) so far")
        return metrics

    def fit(self) -> dict:
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def request_stop(signum, frame):
            self.stop_requested = True
        for sig in previous:
            signal.signal(sig, request_stop)
        try:
            self._open_logs()
            return self._fit()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.writer:
                self.writer.close()

    def _fit(self) -> dict:
        metrics: dict = {}
        while self.epoch < self.config["epochs"]:
            stats = self.train_one_epoch()
            if self.stop_requested:
                self.save("last.pth")
                return {"interrupted": True, "epoch": self.epoch, "step": self.global_step}
            self.epoch, self.batches_done = self.epoch + 1, 0
            self.save("last.pth")  # the epoch is kept even if validation then fails
            evaluate_now = (self.epoch % int(self.config["eval_every"]) == 0
                            or self.epoch == self.config["epochs"])
            metrics = self.validate() if evaluate_now else {}
            self._log_epoch(stats, metrics)
            if metrics and metrics["miou"] > self.best_miou:
                self.best_miou = metrics["miou"]
                self.save("best.pth", metrics)
            if metrics:
                self.save("last.pth", metrics)
            barrier(self.dist)
        return {"interrupted": False, "best_miou": self.best_miou, "last_metrics": metrics,
                "epochs": self.epoch_stats}

    # -- logs ----------------------------------------------------------------------------------
    def _open_logs(self) -> None:
        if not self.dist.is_main:
            return
        # tensorboard imports all of TensorFlow (seconds, and log noise) to write event files
        # unless `tensorboard.compat.notf` exists; its built-in stub writes the same files.
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("notf"))
        from torch.utils.tensorboard import SummaryWriter
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(str(self.run_dir / "tb"))
        self.epoch_log = EpochLog(self.run_dir)

    def _log_epoch(self, stats: dict, metrics: dict) -> None:
        row = {"epoch": self.epoch, "step": self.global_step,
               "lr": self.scheduler.get_last_lr()[0],
               **{f"train_{k}": v for k, v in stats.items()
                  if k.endswith("loss") or k == "miou"},
               **{f"val_{k}": metrics[k] for k in ("miou", "mae_50", "mae_50_95", "pixel_acc")
                  if k in metrics},
               "images_per_s": stats.get("images_per_s"), "epoch_time_s": stats.get("epoch_time_s")}
        self.epoch_stats.append(row)
        if not self.dist.is_main:
            return
        self.epoch_log.append(row)
        for key, value in row.items():
            if key != "epoch" and value is not None:
                self.writer.add_scalar(key.replace("_", "/", 1), value, self.epoch)
        summary = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float))
        tqdm.write(f"epoch {self.epoch}/{self.config['epochs']}: {summary}")
