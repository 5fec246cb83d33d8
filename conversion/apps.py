"""The demo apps' side of an export: what they expect, and copying an export into them.

The apps declare their expectations once, in their own source, and this module reads them:

    android_demo/core/src/main/kotlin/dev/segkit/core/AppContract.kt   (const val NAME = ...)
    ios_demo/SegKitCore/Sources/SegKitCore/AppContract.swift          (static let name = ...)

so asset names and the supported schema version are never copied by hand into Python.

    python -m conversion.apps android            # -> android_demo/app/src/main/assets
    python -m conversion.apps ios                # -> ios_demo/SegKitDemo/Model
    python -m conversion.apps android --from artifacts/quickstart_student

"Latest" is the newest artifact with the app's file name anywhere under --artifacts
(default: artifacts/). The contract is validated with conversion.contract and must have the
schema version, input layout and dtype the app reads; otherwise nothing is copied and the
command exits with status 2 and one line.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import re
import shutil
import sys
from pathlib import Path

from conversion.contract import ContractError, check_artifact, contract_path, load_contract
from training.io import ROOT

KOTLIN_FILE = ROOT / "android_demo/core/src/main/kotlin/dev/segkit/core/AppContract.kt"
SWIFT_FILE = ROOT / "ios_demo/SegKitCore/Sources/SegKitCore/AppContract.swift"
GOLDEN_DIR = ROOT / "android_demo/core/src/test/resources/golden"

_KOTLIN = re.compile(r"^\s*const val (\w+)\s*=\s*(\"[^\"]*\"|-?\d+)\s*$", re.M)
_SWIFT = re.compile(r"^\s*(?:public )?static let (\w+)\s*=\s*(\"[^\"]*\"|-?\d+)\s*$", re.M)


def _literals(pattern: re.Pattern, text: str) -> dict:
    return {name: value[1:-1] if value.startswith('"') else int(value)
            for name, value in pattern.findall(text)}


def kotlin_constants(path: Path = KOTLIN_FILE) -> dict:
    """{"SUPPORTED_SCHEMA_VERSION": 1, "MODEL_ASSET": "...", ...} from AppContract.kt."""
    return _literals(_KOTLIN, path.read_text())


def swift_constants(path: Path = SWIFT_FILE) -> dict:
    """{"supportedSchemaVersion": 1, "modelResource": "...", ...} from AppContract.swift."""
    return _literals(_SWIFT, path.read_text())


DESTINATIONS = {"android": ROOT / "android_demo/app/src/main/assets",
                "ios": ROOT / "ios_demo/SegKitDemo/Model"}


class AssetError(Exception):
    """Bad input: the message is the whole story."""


def expectations(platform: str) -> dict:
    """The artifact name and what the app accepts, as declared in the app's own source."""
    if platform == "android":
        k = kotlin_constants()
        return {"artifact": k["MODEL_ASSET"], "contract": k["CONTRACT_ASSET"],
                "schema": k["SUPPORTED_SCHEMA_VERSION"], "layouts": [k["INPUT_LAYOUT"]],
                "dtypes": k["INPUT_DTYPES"].split(",")}
    s = swift_constants()
    return {"artifact": s["modelPackage"], "contract": s["contractResource"],
            "schema": s["supportedSchemaVersion"], "layouts": s["inputLayouts"].split(","),
            "dtypes": s["inputDtypes"].split(",")}


def find_latest(artifacts: Path, name: str) -> Path:
    candidates = [p for p in artifacts.rglob(name) if not any(
        part.startswith(".") for part in p.relative_to(artifacts).parts)]
    if not candidates:
        raise AssetError(f"no {name} under {artifacts}: export one first, e.g. `python -m "
                         f"conversion.export --target all` (or pass --from DIR)")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def check_contract(artifact: Path, want: dict) -> dict:
    if not contract_path(artifact).is_file():
        raise AssetError(f"{artifact} has no contract {contract_path(artifact).name} next to it")
    try:
        contract = load_contract(artifact)  # validates against conversion.contract.SCHEMA
        check_artifact(artifact, contract)  # and it was written for this very file
    except ContractError as exc:
        raise AssetError(str(exc)) from None
    if contract["schema_version"] != want["schema"]:
        raise AssetError(f"{artifact.name}: contract schema v{contract['schema_version']}, the "
                         f"app reads v{want['schema']}")
    spec = contract["input"]
    if spec["layout"] not in want["layouts"] or spec["dtype"] not in want["dtypes"]:
        raise AssetError(f"{artifact.name}: input {spec['layout']} {spec['dtype']} is not what "
                         f"the app takes ({want['layouts']} {want['dtypes']})")
    return contract


def copy(platform: str, artifacts: Path, dest: Path, source_dir: Path | None = None) -> Path:
    want = expectations(platform)
    if source_dir is not None:
        artifact = source_dir / want["artifact"]
        if not artifact.exists():
            raise AssetError(f"no {want['artifact']} in {source_dir}")
    else:
        artifact = find_latest(artifacts, want["artifact"])
    contract = check_contract(artifact, want)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / want["artifact"]
    if target.is_dir():
        shutil.rmtree(target)
    if artifact.is_dir():  # .mlpackage
        shutil.copytree(artifact, target)
    else:
        shutil.copyfile(artifact, target)
    shutil.copyfile(artifact.with_name(artifact.name + ".json"), dest / want["contract"])
    print(f"copied {artifact} ({contract['artifact']['precision']}, "
          f"{contract['export']['input_size'][0]}x{contract['export']['input_size'][1]}) "
          f"and its contract to {dest}")
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("platform", choices=sorted(DESTINATIONS))
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts",
                        help="where to look for the latest export (default: artifacts/)")
    parser.add_argument("--from", dest="source_dir", type=Path,
                        help="copy from this export directory instead of the latest")
    parser.add_argument("--dest", type=Path, help="default: the app's asset folder")
    args = parser.parse_args(argv)
    try:
        copy(args.platform, args.artifacts, args.dest or DESTINATIONS[args.platform],
             args.source_dir)
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
