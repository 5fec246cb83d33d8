"""The int8 probe converts a reference network itself and really times an int8 model."""
import json
import subprocess
import sys

from training.machine import DOT_PRODUCT_FLAGS, int8_dot_product_flags


def test_probe_times_a_real_int8_model(tmp_path):
    # A child process: TensorFlow must not share the test process with triton (torch.export).
    out = tmp_path / "probe.json"
    subprocess.run([sys.executable, "-m", "benchmarks.int8_probe", "--input-size", "32", "64",
                    "--width", "0.35", "--runs", "2", "--threads", "1", "--json", str(out)],
                   check=True, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    fp32, int8 = result["rows"]["fp32"], result["rows"]["int8"]
    assert fp32["input_dtype"] == "float32" and int8["input_dtype"] == "int8"
    assert int8["size_mb"] < 0.5 * fp32["size_mb"]  # weights really are 8-bit
    assert fp32["latency_ms"] > 0 and int8["latency_ms"] > 0
    assert result["int8_over_fp32"] == int8["latency_ms"] / fp32["latency_ms"]
    assert result["int8_dot_product_flags"] == int8_dot_product_flags()
    assert set(int8_dot_product_flags()) <= set(DOT_PRODUCT_FLAGS)


def test_probe_refuses_a_tiny_input():
    done = subprocess.run([sys.executable, "-m", "benchmarks.int8_probe", "--input-size", "8",
                           "8"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: --input-size")
