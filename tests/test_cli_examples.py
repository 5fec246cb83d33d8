"""Every example command in a --help text, in README.md and in docs/*.md parses, and names
files and dataset specs that exist or are well formed; every `make` target they show exists.

The examples are read from the entry points' own docstrings (what --help prints) and from the
documents' code blocks and code spans; each is parsed by its module's real argument parser,
stopped just after parsing, so nothing trains. Placeholders (H W, SPEC, a|b choices) are
filled with tiny real values. Only the project's own modules are run (`python -m pytest` in a
document is not an example to parse).
"""
from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGES = ("training.", "conversion.", "benchmarks.")
ENTRY_POINTS = ["training.train", "training.distill", "training.evaluate", "training.profile",
                "training.prune", "training.quantize", "training.incremental",
                "training.data.preview", "conversion.export", "conversion.benchmark",
                "conversion.contract", "conversion.apps", "conversion.run",
                "benchmarks.paper_table", "benchmarks.converters", "benchmarks.web_latency",
                "benchmarks.compression_sweep", "benchmarks.int8_probe",
                "benchmarks.stride_ceiling", "benchmarks.parity_margins",
                "benchmarks.quickstart", "benchmarks.incremental_protocol",
                "benchmarks.footage", "benchmarks.deployment_table",
                "benchmarks.data_throughput", "benchmarks.pilot_report",
                "benchmarks.paper_report"]
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


# Command blocks are tagged as shell; an untagged block is a picture or a format (the data
# flow, the dataset-spec grammar), not commands.
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHELL = ("bash", "sh", "shell", "console")
CODE_SPAN = re.compile(r"`([^`]+)`")


def document_commands(path: Path) -> list[str]:
    """`python -m` commands of a Markdown file: fenced code blocks (with their backslash
    continuations) and code spans (which may wrap across lines in prose)."""
    text = path.read_text(encoding="utf-8")
    found = [c for tag, block in FENCE.findall(text) if tag.strip() in SHELL
             for c in commands(block)]
    for span in CODE_SPAN.findall(FENCE.sub("", text)):
        found += commands(" ".join(span.split()))
    return found


def examples() -> list[tuple[str, str]]:
    """(where, command) for every example; `... ` abbreviations point elsewhere, not examples."""
    found = [(f"{module} --help", command) for module in ENTRY_POINTS
             for command in commands(importlib.import_module(module).__doc__ or "")]
    found += [(str(path.relative_to(ROOT)), command) for path in DOCUMENTS
              for command in document_commands(path)]
    return [(where, command) for where, command in found
            if "..." not in command and command.startswith(PACKAGES)]


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
    assert any(w == "README.md" for w, _ in found)
    assert any(w.startswith("docs/") for w, _ in found)


def test_commands_are_read_from_shell_blocks_and_code_spans(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\npython -m training.train \\\n    --config C.yaml  # a comment\n```\n"
                    "```\n python -m training.train ──> a picture, not a command\n```\n"
                    "Prose with `python -m\nbenchmarks.converters --checkpoint S.pth` wrapped.\n")
    assert document_commands(page) == ["training.train --config C.yaml",
                                       "benchmarks.converters --checkpoint S.pth"]


def test_every_make_target_the_documents_show_exists():
    makefile = ROOT.joinpath("Makefile").read_text()
    targets = set(re.findall(r"^([\w.-]+):", makefile, re.MULTILINE))
    shown = set()
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        code = [block for _, block in FENCE.findall(text)] + \
            CODE_SPAN.findall(FENCE.sub("", text))
        shown |= {(path.name, target) for snippet in code
                  for target in re.findall(r"(?<![\w-])make ([a-z][\w-]*)", snippet)}
    missing = sorted((name, target) for name, target in shown if target not in targets)
    assert shown and not missing, f"make targets shown but not in the Makefile: {missing}"
