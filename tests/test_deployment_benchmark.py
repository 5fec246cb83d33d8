"""benchmarks.deployment_table's summary: goal ratios from the rows, and the CPU hint when int8
lags."""
from benchmarks.deployment_table import markdown, row, summarize


def _rows(int8_ms: float) -> list[dict]:
    student = "deeplabv3lite_mobilenetv2 (student)"
    return [row("deeplabv3_resnet50 (teacher)", "pytorch", "fp32", 2000.0, 150.0, 100.0),
            row(student, "pytorch", "fp32", 250.0, 8.4, 100.0, 1.0, 40.0),
            row(student, "tflite", "fp32", 100.0, 8.0, 100.0, 1.0, 40.0),
            row(student, "tflite", "int8", int8_ms, 2.0, 30.0, 0.99, 39.5),
            row("lraspp_mobilenet_v3_large", "tflite", "fp32", 60.0, 12.0, 100.0)]


def test_goals_follow_the_rows_and_the_hint_names_the_missing_cpu_feature():
    slow = summarize(_rows(int8_ms=80.0), (512, 1024), 2, images=4, int8_weights="per-channel")
    assert slow["ratios"]["int8_vs_fp32_tflite_latency"] == 0.8
    assert slow["ratios"]["int8_vs_teacher_latency"] == 0.04
    assert slow["ratios"]["int8_vs_fp32_tflite_size"] == 0.25
    assert not slow["goals"]["int8_vs_fp32_tflite_latency"]["met"]
    assert slow["goals"]["int8_vs_teacher_latency"]["met"]
    assert not slow["goals"]["faster_than_every_lraspp_tflite"]["met"]  # 80 ms vs 60 ms

    slow["int8_dot_product_flags"] = []
    assert "no int8 dot-product instructions" in markdown(slow)
    slow["int8_dot_product_flags"] = ["avx512_vnni"]
    assert "dot-product" not in markdown(slow)

    fast = summarize(_rows(int8_ms=30.0), (512, 1024), 2, images=4, int8_weights="per-channel")
    fast["int8_dot_product_flags"] = []
    assert fast["goals"]["int8_vs_fp32_tflite_latency"]["met"]
    assert "dot-product" not in markdown(fast)
