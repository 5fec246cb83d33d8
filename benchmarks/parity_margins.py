"""How far the suite's parity fixture clears the export gate, per oneDNN kernel set and seed.

    python -m benchmarks.parity_margins        # SSE41 AVX AVX2 AVX512_CORE default x 3 seeds
    python -m benchmarks.parity_margins --isas AVX2 default --seeds 0 --json margins.json

The fixture's recipe ends with other weights on other CPUs: oneDNN picks its convolution
kernels by the CPU's vector extensions (`ONEDNN_MAX_CPU_ISA` caps them, so one machine can
stand in for older ones; PyTorch's ATEN_CPU_CAPABILITY does not change this model's
training). For every (ISA cap, seed) a child process under that cap trains the fixture with
`conversion/parity_fixture.py`'s recipe, stores it as the committed one is stored, and runs
the suite's exports (`SUITE_EXPORTS`) with the gate's default thresholds. Seed `committed` skips
training and measures the committed fixture itself under that cap: what `make test` sees on
such a CPU. The table gives each setting's worst agreement per precision class and its
margin over the threshold; it is written to `--json` and a Markdown file beside it.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from training.errors import UserError, run_cli
from training.io import atomic_write_text, write_results
from training.machine import machine_record, supported_onednn_isas

DEFAULT_ISAS = ("SSE41", "AVX", "AVX2", "AVX512_CORE", "default")
DEFAULT_JSON = Path("benchmarks/results/parity_margins.json")
# Every setting must clear each threshold by this much. fp32 (0.999) and fp16 (0.995) sit
# closer than that to a perfect 1.0, so there the requirement is half their room below 1.0.
REQUIRED_MARGIN = 0.01


def measure_setting(seed: str, work: Path) -> dict:
    """In the child: train (unless `seed` is 'committed'), then run the suite's exports."""
    from conversion.parity_fixture import FIXTURE, SUITE_EXPORTS, compact, suite_export, \
        train_fixture
    from conversion.pipeline import ExportRun
    from training.checkpoint import load_checkpoint

    train_s = None
    fixture = FIXTURE
    if seed != "committed":
        last, train_s = train_fixture(work / "train", int(seed))
        fixture = compact(last, work / "fixture.pth")
    artifacts, reference = [], None
    for name in SUITE_EXPORTS:
        result = ExportRun(suite_export(name, fixture, work / name)).run()
        reference = reference or json.loads((work / name / "parity.json").read_text())
        artifacts += [dict(entry, export=name) for entry in result["entries"]
                      if entry["agreement"] is not None]
    metrics = load_checkpoint(fixture).get("metrics") or {}
    return {"train_s": train_s, "val_miou": metrics.get("miou"),
            "confident_share": reference["reference"]["confident_share"],
            "artifacts": [{key: entry[key] for key in (
                "export", "file", "precision", "precision_class", "agreement",
                "agreement_confident", "confident_share", "miou_drop", "passed")}
                for entry in artifacts]}


def run_setting(isa: str, seed: str, work: Path) -> dict:
    """One (ISA cap, seed) in a child process: oneDNN reads the cap once, at start-up."""
    env = dict(os.environ)
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if isa != "default":
        env["ONEDNN_MAX_CPU_ISA"] = isa
    result = work / "result.json"
    command = [sys.executable, "-m", "benchmarks.parity_margins", "--child-seed", seed,
               "--work", str(work), "--json", str(result)]
    started = time.perf_counter()
    with open(work.with_suffix(".log"), "w") as log:
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0 or not result.is_file():
        raise UserError(f"fixture run {isa} seed {seed} failed (exit {done.returncode}); "
                        f"see {work.with_suffix('.log')}")
    measured = json.loads(result.read_text())
    measured.update(isa=isa, seed=seed, wall_s=time.perf_counter() - started)
    return measured


def summarize(runs: list[dict], thresholds: dict) -> list[dict]:
    """One row per setting: worst agreement per precision class over the suite's exports."""
    rows = []
    for run in runs:
        row = {"isa": run["isa"], "seed": run["seed"], "train_s": run["train_s"],
               "confident_share": run["confident_share"], "val_miou": run["val_miou"]}
        for entry in run["artifacts"]:
            klass = entry["precision_class"]
            worst = row.get(f"{klass}_agreement")
            if worst is None or entry["agreement"] < worst:
                row[f"{klass}_agreement"] = entry["agreement"]
                row[f"{klass}_worst"] = f"{entry['export']}/{entry['file']}"
            drop = entry["miou_drop"]
            if klass == "int8" and drop is not None:
                row["int8_miou_drop"] = max(row.get("int8_miou_drop", drop), drop)
        row["margins"] = {klass: row[f"{klass}_agreement"] - limits["agreement"]
                          for klass, limits in thresholds.items()
                          if f"{klass}_agreement" in row}
        row["int8_confident_agreement"] = min(
            e["agreement_confident"] for e in run["artifacts"]
            if e["precision_class"] == "int8" and e["agreement_confident"] is not None)
        rows.append(row)
    return rows


def markdown(result: dict) -> str:
    lines = [f"# Parity fixture margins ({result['machine']['machine']})", "",
             f"CPU flags: {', '.join(result['machine']['cpu_flags'])}. Each row trains the "
             f"fixture under that `ONEDNN_MAX_CPU_ISA` cap and seed, then runs the suite's "
             f"exports ({', '.join(result['exports'])}); agreement is the worst artifact of "
             f"its class. Thresholds: " + ", ".join(
                 f"{k} >= {v['agreement']}" for k, v in result["thresholds"].items()) +
             f"; required margin {REQUIRED_MARGIN}.", "",
             "| ONEDNN_MAX_CPU_ISA | seed | fp32 | fp16 | int8 (worst) | int8 margin | "
             "int8 on confident pixels | confident share | int8 mIoU drop | val mIoU | "
             "train s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['isa']} | {row['seed']} | {row['fp32_agreement']:.4f} | "
                     f"{row['fp16_agreement']:.4f} | {row['int8_agreement']:.4f} | "
                     f"{row['margins']['int8']:+.4f} | {row['int8_confident_agreement']:.4f} | "
                     f"{row['confident_share']:.3f} | {row['int8_miou_drop']:.2f} | "
                     f"{row['val_miou']:.1f} | "
                     f"{'-' if row['train_s'] is None else format(row['train_s'], '.0f')} |")
    lines += ["", f"Worst int8 agreement over all settings: **{result['worst_int8']:.4f}** "
              f"(margin {result['worst_int8_margin']:+.4f}; "
              f"{'met' if result['all_margins_met'] else 'MISSED'}: every setting clears the int8 "
              f"thresholds by >= {REQUIRED_MARGIN}, fp32 and fp16 theirs by half their room "
              f"below 1.0)."]
    if result["skipped_isas"]:
        lines.append(f"Not run (this CPU lacks them): {', '.join(result['skipped_isas'])}.")
    return "\n".join(lines) + "\n"


def required_margin(threshold: float) -> float:
    return min(REQUIRED_MARGIN, (1.0 - threshold) / 2)


def margins_met(rows: list[dict], thresholds: dict) -> bool:
    """Every class's worst agreement clears its threshold by `required_margin`, and the
    worst int8 mIoU drop stays REQUIRED_MARGIN points under its limit."""
    for row in rows:
        for klass, margin in row["margins"].items():
            if margin < required_margin(thresholds[klass]["agreement"]) - 1e-12:
                return False
        if row["int8_miou_drop"] > thresholds["int8"]["miou_drop"] - REQUIRED_MARGIN:
            return False
    return True


def main(argv: list[str] | None = None) -> dict:
    from conversion.parity import DEFAULT_THRESHOLDS
    from conversion.parity_fixture import SUITE_EXPORTS

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--isas", nargs="+", default=list(DEFAULT_ISAS),
                        help="ONEDNN_MAX_CPU_ISA caps ('default': no cap)")
    parser.add_argument("--seeds", nargs="+", default=["committed", "0", "1", "2"],
                        help="training seeds; 'committed': the committed fixture, untrained")
    parser.add_argument("--work", type=Path, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--child-seed", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_seed is not None:  # one setting, in the child run_setting started
        atomic_write_text(args.json, json.dumps(measure_setting(args.child_seed, args.work)))
        return {}
    bad = [seed for seed in args.seeds if seed != "committed" and not seed.isdigit()]
    if bad:
        raise UserError(f"--seeds: {bad[0]!r} is neither an integer nor 'committed'")
    available = set(supported_onednn_isas()) | {"default"}
    isas = [isa for isa in args.isas if isa in available]
    skipped = [isa for isa in args.isas if isa not in available]
    if not isas:
        raise UserError(f"none of {', '.join(args.isas)} runs on this CPU")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    work_root = Path(args.work or tempfile.mkdtemp(prefix="parity-margins-"))
    settings = [(isa, seed) for isa in isas for seed in args.seeds]
    runs = []
    for isa, seed in tqdm(settings, desc="fixture settings", unit="run"):
        work = work_root / f"{isa}_{seed}"
        work.mkdir(parents=True, exist_ok=True)
        runs.append(run_setting(isa, seed, work))
    rows = summarize(runs, DEFAULT_THRESHOLDS)
    worst = min(rows, key=lambda row: row["int8_agreement"])
    result = {"machine": machine_record(), "exports": list(SUITE_EXPORTS),
              "thresholds": DEFAULT_THRESHOLDS, "required_margin": REQUIRED_MARGIN,
              "skipped_isas": skipped, "rows": rows, "runs": runs,
              "worst_int8": worst["int8_agreement"],
              "worst_int8_margin": worst["margins"]["int8"],
              "all_margins_met": margins_met(rows, DEFAULT_THRESHOLDS)}
    write_results(args.json, result, markdown(result))
    return result


if __name__ == "__main__":
    run_cli(main)
