"""web_demo/server.mjs against hostile and mistaken requests (issue 26: B7, B8, B9 and the
methods): it serves only files inside its folders, answers 400 to a malformed path and 405 to
a method other than GET and HEAD, and no request or broken contract stops it.

The server runs as `node server.mjs` in a child process, on a port of its own; only node is
needed (not the npm packages).
"""
from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[1] / "web_demo"
NODE = shutil.which("node")
SECRET = "planted secret"


def _need_node() -> None:
    if NODE is None:
        if os.environ.get("SEGKIT_REQUIRE_TOOLS") == "1":
            pytest.fail("node (Node.js 20+) is missing, and make test needs it")
        pytest.skip("node (Node.js 20+) is missing")


def _contract(precision: str) -> str:
    return json.dumps({"artifact": {"precision": precision}, "input": {}, "output": {},
                       "classes": {}})


def _export_folder(root: Path) -> Path:
    """root/quickstart_student (two models) and its sibling root/quickstart_student_secret."""
    models = root / "quickstart_student"
    models.mkdir(parents=True)
    for precision in ("fp32", "int8"):
        (models / f"m_{precision}.tflite").write_bytes(b"TFL3" + precision.encode())
        (models / f"m_{precision}.tflite.json").write_text(_contract(precision))
    secret = root / "quickstart_student_secret"
    secret.mkdir()
    (secret / "secret.txt").write_text(SECRET)
    (models / "link.txt").symlink_to(secret / "secret.txt")
    return models


class Server:
    def __init__(self, models: Path):
        self.process = subprocess.Popen([NODE, "server.mjs", "--models", str(models), "--port",
                                         "0"], cwd=WEB, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else ""
        assert line.startswith("segkit web demo: http://127.0.0.1:"), \
            line + self.process.stderr.read() if self.process.poll() is not None else line
        self.port = int(line.split("127.0.0.1:")[1].split("/")[0])

    def request(self, path: str, method: str = "GET", body: bytes | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace"), response
        finally:
            connection.close()

    def alive(self) -> bool:
        status, body, _ = self.request("/models/index.json")
        return self.process.poll() is None and status == 200 and "models" in json.loads(body)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def server(tmp_path):
    _need_node()
    models = _export_folder(tmp_path)
    running = Server(models)
    yield running, models
    running.stop()


@pytest.mark.parametrize("path", [
    "/models/..%2fquickstart_student_secret/secret.txt",
    "/models/%2e%2e%2fquickstart_student_secret/secret.txt",
    "/models/%2E%2E%2Fquickstart_student_secret%2Fsecret.txt",
    "/models/..%5c..%2fquickstart_student_secret/secret.txt",
    "/models/link.txt",  # a symbolic link inside the folder that points outside it
    "/models/%2fetc%2fpasswd",
    "/..%2f..%2fetc/passwd",
])
def test_nothing_outside_the_served_folders_is_served(server, path):
    running, _ = server
    status, body, _ = running.request(path)
    assert status == 404 and SECRET not in body and "root:" not in body
    assert running.alive()


def test_containment_needs_a_separator_not_a_shared_prefix(server):
    """The vendor mounts and web_demo/ itself: a sibling whose name starts with the root's
    (node_modules/@litertjs/core-x, ../web_demo_secret) is outside."""
    script = ("import {isInside} from './server.mjs';"
              "console.log(JSON.stringify(["
              "isInside('/w/node_modules/@litertjs/core', '/w/node_modules/@litertjs/core-x/s'),"
              "isInside('/w/web_demo', '/w/web_demo_secret/secret.txt'),"
              "isInside('/w/web_demo', '/w/web_demo'),"
              "isInside('/w/web_demo', '/w/web_demo/..data/x.js'),"
              "isInside('/w/web_demo', '/w/web_demo/app.js')]))")
    done = subprocess.run([NODE, "--input-type=module", "-e", script], cwd=WEB,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [False, False, False, True, True]


@pytest.mark.parametrize("path", ["/%E0%A4%A", "/%", "/models/%C0%AF",
                                  "/vendor/litertjs-core/%FF", "/models/%00", "/%zz"])
def test_a_malformed_path_is_400_and_the_server_survives(server, path):
    running, _ = server
    status, body, _ = running.request(path)
    assert status == 400 and "malformed" in body
    assert running.alive()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods_other_than_get_and_head_are_405(server, method):
    running, _ = server
    status, body, response = running.request("/models/m_int8.tflite", method, body=b"x")
    assert status == 405 and "TFL3" not in body
    assert response.getheader("Allow") == "GET, HEAD"
    status, body, response = running.request("/models/m_int8.tflite", "HEAD")
    assert status == 200 and body == ""
    assert running.request("/models/m_int8.tflite")[:2] == (200, "TFL3int8")


def test_a_contract_broken_while_running_is_reported_not_fatal(server):
    running, models = server
    (models / "m_int8.tflite.json").write_text('{"artifact": {"precis')  # truncated
    status, body, _ = running.request("/models/index.json")
    index = json.loads(body)
    assert status == 200 and [m["file"] for m in index["models"]] == ["m_fp32.tflite"]
    assert [p["file"] for p in index["problems"]] == ["m_int8.tflite"]
    (models / "m_fp32.tflite.json").write_text("[1, 2]")  # JSON, but not a contract
    assert len(json.loads(running.request("/models/index.json")[1])["problems"]) == 2
    shutil.rmtree(models)  # the folder itself disappears
    assert running.request("/models/index.json")[0] == 200 and running.alive()


def test_start_up_skips_a_truncated_contract_with_a_warning(tmp_path):
    _need_node()
    models = _export_folder(tmp_path)
    (models / "m_int8.tflite.json").write_text('{"artifact": ')
    running = Server(models)
    try:
        index = json.loads(running.request("/models/index.json")[1])
        assert [m["file"] for m in index["models"]] == ["m_fp32.tflite"]
    finally:
        running.stop()
    assert "warning: not served as a model: m_int8.tflite.json" in running.process.stderr.read()


def test_start_up_without_a_readable_contract_is_one_line_exit_2(tmp_path):
    _need_node()
    models = _export_folder(tmp_path)
    for contract in models.glob("*.json"):
        contract.write_text("{")
    done = subprocess.run([NODE, "server.mjs", "--models", str(models), "--port", "0"],
                          cwd=WEB, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no exported .tflite"), done.stderr
    assert "m_int8.tflite.json: unreadable model contract" in lines[0]
