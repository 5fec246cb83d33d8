"""Every example command in a --help text and in the README's stage table parses, and names
files and dataset specs that exist or are well formed.

The examples are read from the entry points' own docstrings (what --help prints) and from the
README; each is parsed by its module's real argument parser, stopped just after parsing, so
nothing trains. Placeholders (H W, SPEC, a|b choices) are filled with tiny real values.
"""
from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = ["training.train", "training.distill", "training.evaluate", "training.profile",
                "training.prune", "training.quantize", "training.incremental",
                "training.data.preview", "conversion.export", "conversion.benchmark",
                "conversion.contract", "conversion.apps", "conversion.run",
                "benchmarks.paper_table", "benchmarks.converters", "benchmarks.web_latency",
                "benchmarks.compression_sweep", "benchmarks.int8_probe",
                "benchmarks.stride_ceiling", "benchmarks.parity_margins",
                "benchmarks.quickstart", "benchmarks.incremental_protocol"]
PLACEHOLDERS = {"H W": "64 128", "SPEC": "synthetic", "HxW": "64x128", "DIR": "/tmp/segkit-dir",
                "N": "4", "E": "1", "STUDENT": "mnv2"}
SPEC_FLAGS = ("dataset", "calib", "new_data", "parity_data")


class Parsed(Exception):
    def __init__(self, namespace):
        self.namespace = namespace


def commands(text: str) -> list[str]:
    """`python -m module ...` lines (with backslash continuations) of a docstring."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        match = re.search(r"(?:python|torchrun[^`]*?) -m ([\w.]+)([^`#\n]*)", line)
        if match:
            found.append(f"{match.group(1)} {match.group(2).strip()}".strip())
    return found


def readme_commands() -> list[str]:
    table = ROOT.joinpath("README.md").read_text().split("## One command per stage")[1]
    table = table.split("\n### ")[0]
    return [c for cell in re.findall(r"`([^`]*-m [^`]*)`", table) for c in commands(cell)]


def examples() -> list[tuple[str, str]]:
    """(where, command) for every example; `... ` abbreviations point elsewhere, not examples."""
    found = [(f"{module} --help", command) for module in ENTRY_POINTS
             for command in commands(importlib.import_module(module).__doc__ or "")]
    found += [("README stage table", command) for command in readme_commands()]
    return [(where, command) for where, command in found if "..." not in command]


def fill(command: str) -> list[str]:
    for key, value in PLACEHOLDERS.items():
        command = re.sub(rf"(?<![\w/.-]){re.escape(key)}(?![\w/.-])", value, command)
    # [--a X | --b]: optional, take the first alternative; a|b|c: the first choice.
    command = re.sub(r"\[([^\]]*)\]", lambda m: m.group(1).split(" | ")[0], command)
    command = re.sub(r"(\w+)\\?\|[\w|\\]+", r"\1", command)
    return shlex.split(command)


def check_spec(spec: str) -> None:
    """A dataset spec that exists here parses; one whose data is elsewhere is well formed."""
    from training.data import parse_dataset_spec
    kind, _, rest = spec.partition(":")
    if kind == "synthetic" or spec.endswith(".npy"):
        if kind == "synthetic":
            parse_dataset_spec(spec)
        return
    assert kind in ("cityscapes", "camvid", "folder"), spec
    assert rest and "=" not in rest, f"{spec!r}: ROOT is a path, not key=value"
    if (ROOT / rest).exists() or Path(rest).exists():
        parse_dataset_spec(spec if Path(rest).is_absolute() else f"{kind}:{ROOT / rest}")


@pytest.mark.parametrize("where, command", examples(),
                         ids=[f"{w}: {c}"[:90] for w, c in examples()])
def test_example_parses_and_names_real_files(where, command, monkeypatch):
    module_name, *argv = fill(command)
    module = importlib.import_module(module_name)
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with pytest.raises(Parsed) as parsed:
        module.main(argv)
    values = vars(parsed.value.namespace)
    for key, value in values.items():
        text = str(value)
        if key in SPEC_FLAGS and value is not None:
            check_spec(text)
        elif key == "config" and value is not None:
            assert (ROOT / text).is_file(), f"{where}: {command}: no {text}"
    for word in argv:  # the configs an example names must exist (outputs need not)
        if word.startswith("configs/"):
            assert (ROOT / word).is_file(), f"{where}: {command}: no {word}"


def test_the_examples_are_found():
    found = examples()
    assert len(found) >= 25
    assert any(c.startswith("training.train ") for _, c in found)
    assert any(w == "README stage table" for w, _ in found)
