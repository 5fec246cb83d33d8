"""The apps' expectations, read from their source: the single place they are declared.

    android_demo/core/src/main/kotlin/dev/segkit/core/AppContract.kt   (const val NAME = ...)
    ios_demo/SegKitCore/Sources/SegKitCore/AppContract.swift          (static let name = ...)

Used by copy_assets.py, make_golden.py and tests/test_app_contract.py, so that asset names and
the supported schema version are never copied by hand into Python.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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
