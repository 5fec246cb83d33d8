"""`make test` compiles android_demo's platform-free Kotlin core and runs its JUnit 4 tests.

android_demo/core/run_tests.sh does the work with Debian's kotlinc 1.3 and junit4 (no Gradle,
no Android SDK); this wrapper fails when any JUnit test fails, and skips only when kotlinc is
not installed (`apt-get install -y kotlin junit4`).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "android_demo" / "core"


@pytest.mark.skipif(shutil.which("kotlinc") is None,
                    reason="kotlinc is not installed (apt-get install -y kotlin junit4); the "
                           "Kotlin core's JUnit tests cannot run")
def test_kotlin_core_compiles_and_its_junit_tests_pass(tmp_path):
    done = subprocess.run(["sh", str(CORE / "run_tests.sh")], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "BUILD": str(tmp_path / "jvm-tests")})
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"Kotlin core tests failed (exit {done.returncode}):\n" \
                                 f"{output[-6000:]}"
    ran = re.search(r"^OK \((\d+) tests?\)", output, re.M)
    assert ran, f"JUnit did not report success:\n{output[-3000:]}"
    assert int(ran.group(1)) >= 40, "fewer JUnit tests ran than the core has"
