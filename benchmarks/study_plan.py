"""What the CamVid study trains: its settings, the KD recipes, and every stage's config.

    plan = StudyPlan(dataset="camvid:../shared/datasets/camvid")   # validates itself
    stages = stage_configs(plan)        # name -> {"config", "distill", "role", ...}

A KD recipe is how a student learns from the teacher: soft labels `cached` (the teacher's
logits of each un-augmented image, computed once) or `online` (the teacher runs on each
augmented batch), the soft loss (`kl`, `cwd`, `dist`), alpha and the temperature. Its `tag`
names the stage (`mnv2_kd_online_kl_a0.5_T2_s0`), so a pilot's run is the study's seed-0 run
whenever they share a recipe, and two recipes never overwrite each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from training.config import CHOICES, DEFAULTS, DISTILLATION, load_yaml, validate_config
from training.data import parse_dataset_spec
from training.errors import UserError, require_at_least_one
from training.io import ROOT
from training.models import validate_input_size

TEACHER_RECIPE = ROOT / "configs" / "camvid_teacher_r50.yaml"
STUDENT_RECIPES = {"r18": ROOT / "configs" / "camvid_r18_kd.yaml",
                   "mnv2": ROOT / "configs" / "camvid_mobilenetv2_kd.yaml"}
LIGHTEST_FIRST = ("mnv2", "r18")  # STUDENT_RECIPES' keys in the order their runs train
GRID_ALPHAS, GRID_TEMPERATURES = (0.3, 0.5, 0.7), (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class KDRecipe:
    soft_labels: str = "cached"
    kd_loss: str = "kl"
    alpha: float = 0.5
    temperature: float = 2.0

    def __post_init__(self):
        for key in ("soft_labels", "kd_loss"):
            if getattr(self, key) not in CHOICES[key]:
                raise UserError(f"KD recipe: {key} must be one of {', '.join(CHOICES[key])}, "
                                f"got {getattr(self, key)!r}")
        if not 0 < self.alpha <= 1:
            raise UserError(f"KD recipe: alpha must be in (0, 1], got {self.alpha:g}")
        if self.temperature <= 0:
            raise UserError(f"KD recipe: temperature must be positive, got {self.temperature:g}")

    @property
    def tag(self) -> str:
        return f"kd_{self.soft_labels}_{self.kd_loss}_a{self.alpha:g}_T{self.temperature:g}"

    @classmethod
    def parse(cls, text: str) -> "KDRecipe":
        """'online:kl:0.5:2' -> KDRecipe('online', 'kl', 0.5, 2.0)."""
        try:
            soft, loss, alpha, temperature = text.split(":")
            alpha, temperature = float(alpha), float(temperature)
        except ValueError:
            raise UserError(f"KD recipe {text!r}: expected SOFT_LABELS:LOSS:ALPHA:T, e.g. "
                            f"online:kl:0.5:2") from None
        return cls(soft, loss, alpha, temperature)

    def config(self) -> dict:
        return {"soft_labels": self.soft_labels, "kd_loss": self.kd_loss, "alpha": self.alpha,
                "temperature": self.temperature}


def default_recipe() -> KDRecipe:
    """The students' configs' recipe: what `training.distill --config configs/camvid_*_kd.yaml`
    does, and so what the study measures unless told otherwise."""
    recipes = {KDRecipe(**{k: dict(DEFAULTS, **load_yaml(path))[k]
                           for k in ("soft_labels", "kd_loss", "alpha", "temperature")})
               for path in STUDENT_RECIPES.values()}
    if len(recipes) != 1:
        raise UserError(f"the student configs disagree on the KD recipe: {sorted(recipes)}")
    return recipes.pop()


# The pilot (one student, seed 0, the study's budget): KL with the teacher online on each
# augmented batch ("consistent", Beyer et al. 2022), KL cached (the paper's), the earlier grid's
# best cell, and DIST (Huang et al. 2022), the loss built for a large teacher-student gap that
# the configs now use. Trained in this order.
PILOT_RECIPES = (KDRecipe("online", "kl", 0.5, 2.0), KDRecipe("cached", "kl", 0.5, 2.0),
                 KDRecipe("cached", "kl", 0.5, 4.0), KDRecipe("cached", "dist", 0.5, 1.0))


@dataclass(frozen=True)
class StudyPlan:
    dataset: str
    workdir: Path
    out: Path
    input_size: tuple[int, int] = (96, 128)
    epochs: int = 40
    teacher_epochs: int | None = None  # None: as many as the students
    teacher_output_stride: int = 16  # 8: finer logits, about 3.4x the teacher's FLOPs
    seeds: int = 3
    schedule: str = "cosine"
    recipe: KDRecipe = field(default_factory=default_recipe)
    compare_schedules: bool = False
    kd_grid: str | None = None
    pilot: str | None = None  # a student: train only its seed-0 plain run and pilot_recipes
    pilot_recipes: tuple[KDRecipe, ...] = PILOT_RECIPES
    batch_size: int = 8
    bf16: str = "auto"
    device: str = "cpu"
    threads: int = 2
    workers: int = 2
    calib_count: int = 64
    skip_export: bool = False
    progress: bool = True

    def __post_init__(self):
        object.__setattr__(self, "teacher_epochs", self.teacher_epochs or self.epochs)
        object.__setattr__(self, "input_size", tuple(self.input_size))
        object.__setattr__(self, "workdir", Path(self.workdir))
        object.__setattr__(self, "out", Path(self.out))
        require_at_least_one(epochs=self.epochs, teacher_epochs=self.teacher_epochs,
                             seeds=self.seeds, batch_size=self.batch_size,
                             threads=self.threads, calib_count=self.calib_count)
        if self.workers < 0:
            raise UserError("--workers must be 0 or more")
        if self.teacher_output_stride not in (8, 16):
            raise UserError(f"--teacher-output-stride must be 8 or 16, got "
                            f"{self.teacher_output_stride}")
        if self.schedule not in CHOICES["lr_schedule"]:
            raise UserError(f"--schedule must be one of {', '.join(CHOICES['lr_schedule'])}")
        for option in ("kd_grid", "pilot"):
            if getattr(self, option) not in (None, *STUDENT_RECIPES):
                raise UserError(f"--{option.replace('_', '-')} must be one of "
                                f"{', '.join(STUDENT_RECIPES)}")
        if self.pilot and not self.pilot_recipes:
            raise UserError("--pilot needs at least one recipe")
        if self.bf16 not in ("on", "off", "auto"):
            raise UserError(f"--bf16 must be on, off or auto, got {self.bf16!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available here")
        validate_input_size(self.input_size, 16)
        spec = parse_dataset_spec(self.dataset)
        if not {"train", "val"} <= set(spec.splits):
            raise UserError(f"{self.dataset!r} needs train and val splits, has {spec.splits}")


def teacher_stage(schedule: str, output_stride: int = 16) -> str:
    """`teacher_r50_cosine`, or `teacher_r50_os8_cosine` for a teacher at output stride 8."""
    return f"teacher_r50_{'' if output_stride == 16 else f'os{output_stride}_'}{schedule}"


def student_stage(short: str, seed: int, recipe: KDRecipe | None = None,
                  teacher_output_stride: int = 16) -> str:
    """`r18_plain_s0`, `r18_kd_cached_kl_a0.5_T2_s0`; a distilled run names a teacher at
    another output stride (`..._T2_os8teacher_s0`), so it never reuses one distilled from the
    OS16 teacher, while its plain twin, which no teacher touches, is the same run."""
    if recipe is None:
        return f"{short}_plain_s{seed}"
    teacher = "" if teacher_output_stride == 16 else f"_os{teacher_output_stride}teacher"
    return f"{short}_{recipe.tag}{teacher}_s{seed}"


def training_order(stages: dict[str, dict]) -> list[str]:
    """The stages in the order they train: the study's teacher, then the lighter student's
    runs before the heavier one's (a study stopped part-way has one student's every seed),
    then the schedule-comparison teachers."""
    def key(name: str) -> tuple[int, int]:
        stage = stages[name]
        if stage["role"] == "teacher":
            return (0 if stage["study"] else 2, 0)
        return (1, LIGHTEST_FIRST.index(stage["student"]))
    return sorted(stages, key=key)


def stage_configs(plan: StudyPlan) -> dict[str, dict]:
    """name -> {"config", "distill", "role", ...} for every training stage, teachers first."""
    def recipe(path: Path, epochs: int, schedule: str) -> dict:
        config = dict(DEFAULTS, **load_yaml(path))
        config.update(dataset=plan.dataset, input_size=list(plan.input_size), epochs=epochs,
                      lr_schedule=schedule, lr_step_epochs=max(1, epochs // 3),
                      output_dir=str(plan.workdir), device=plan.device,
                      progress=plan.progress, workers=plan.workers,
                      batch_size=plan.batch_size, bf16=plan.bf16,
                      cache_dir=str(plan.workdir / "soft_label_cache"))
        return config

    def teacher(schedule: str) -> dict:
        config = recipe(TEACHER_RECIPE, plan.teacher_epochs, schedule)
        config.update(output_stride=plan.teacher_output_stride)
        return {"config": config, "distill": False, "role": "teacher", "schedule": schedule,
                "study": schedule == plan.schedule}

    teacher_os = plan.teacher_output_stride
    teacher_path = str(plan.workdir / teacher_stage(plan.schedule, teacher_os) / "best.pth")

    def student(short: str, seed: int, kd: KDRecipe | None, role: str) -> tuple[str, dict]:
        config = recipe(STUDENT_RECIPES[short], plan.epochs, plan.schedule)
        # A plain run reads no distillation key: the defaults, whatever the config's recipe,
        # so that its twin is the same run for every recipe.
        cache_dir = config["cache_dir"]
        config.update({key: DEFAULTS[key] for key in DISTILLATION}, seed=seed)
        if kd:
            config.update(teacher=teacher_path, cache_dir=cache_dir, **kd.config())
        return student_stage(short, seed, kd, teacher_os), {
            "config": config, "distill": kd is not None, "role": role, "student": short,
            "seed": seed, "recipe": kd.tag if kd else None,
            "alpha": kd.alpha if kd else None, "temperature": kd.temperature if kd else None}

    stages = {teacher_stage(plan.schedule, teacher_os): teacher(plan.schedule)}
    if plan.pilot:
        for kd in (None, *plan.pilot_recipes):
            name, stage = student(plan.pilot, 0, kd, "pilot")
            stages[name] = stage
    else:
        for short in STUDENT_RECIPES:
            for seed in range(plan.seeds):
                for kd in (None, plan.recipe):
                    name, stage = student(short, seed, kd, "student")
                    stages[name] = stage
        if plan.kd_grid:
            for alpha in GRID_ALPHAS:
                for temperature in GRID_TEMPERATURES:
                    kd = KDRecipe(plan.recipe.soft_labels, plan.recipe.kd_loss, alpha,
                                  temperature)
                    name, stage = student(plan.kd_grid, 0, kd, "grid")
                    stages.setdefault(name, stage)  # the study's own cell stays a student
        if plan.compare_schedules:  # last: the study's results do not wait for them
            for schedule in CHOICES["lr_schedule"]:
                stages.setdefault(teacher_stage(schedule, teacher_os), teacher(schedule))
    for name, stage in stages.items():
        stage["config"]["name"] = name
        validate_config(stage["config"])  # resolves bf16 'auto' for this machine
        if stage["distill"] and stage["config"]["soft_labels"] == "online":
            # The teacher then runs every step: in bf16 wherever the student trains in it.
            stage["config"]["teacher_bf16"] = stage["config"]["bf16"]
    return stages
