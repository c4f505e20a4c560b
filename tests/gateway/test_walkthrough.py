"""docs/operations.md's walkthrough, run as written: its commands and its nginx configuration
are read from the page and run (on loopback ports of the test's own, with the placeholders
filled from the commands' own output), so the page cannot drift from what the gateway does."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.live import BIN, ROOT, clean_env, free_port

_PAGE = ROOT / "docs" / "operations.md"
_SECTION = "## Two gateways and a worker on one machine"
_LONG_RUNNING = ("partner-gateway serve", "partner-gateway worker", "nginx ")
_UNTIL = re.compile(r'# until "(?P<text>[^"]+)"')


def _walkthrough() -> str:
    page = _PAGE.read_text("utf-8")
    start = page.index(_SECTION)
    return page[start : page.index("\n## ", start + len(_SECTION))]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)\n```", text, flags=re.S)


def _values(output: str) -> dict[str, str]:
    """Every scalar of a command's JSON output, by key (what the page says to note)."""
    try:
        parsed = json.loads(output)
    except ValueError:
        return {}
    found: dict[str, str] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, dict | list):
                    walk(item)
                elif item is not None:
                    found.setdefault(key, str(item))
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(parsed)
    return found


def _expected_status(line: str, output: str) -> int:
    """0, but `call` exits 3 on a 2xx answer in which some entries failed (the README's
    table): the batch, once done, has the one entry already deleted by the first call."""
    if "partner-gateway call" not in line:
        return 0
    answer = json.loads(output)
    summary = (answer["body"].get("data") or {}).get("summary") or {}
    return 3 if answer["status"] < 300 and summary.get("failed", 0) > 0 else 0


class _Terminal:
    """Runs the page's lines in bash, in one folder, keeping what each `export` sets."""

    def __init__(self, folder: Path, env: dict[str, str], ports: list[int]) -> None:
        self.folder, self.env, self.ports = folder, env, ports
        self.values: dict[str, str] = {}
        self.outputs: list[tuple[str, str]] = []
        self.background: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def fill(self, text: str) -> str:
        """The page's ports 8000-8002 become the test's; placeholders, the values noted."""
        text = re.sub(r"\b800([0-2])\b", lambda m: str(self.ports[int(m.group(1))]), text)
        text = re.sub(r"<(\w+)>", lambda m: self.values.get(m.group(1), m.group(0)), text)
        assert not re.search(r"<\w+>", text), f"no value noted for a placeholder in {text!r}"
        return text

    def run(self, line: str) -> str:
        script = f'{line}\n__rc=$?\nenv -0 > "{self.folder}/.env"\nexit $__rc\n'
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == _expected_status(line, done.stdout), (
            line,
            done.stdout,
            done.stderr,
        )
        pairs = (self.folder / ".env").read_text().split("\0")
        self.env = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        self.values.update(_values(done.stdout))
        self.outputs.append((line, done.stdout))
        return done.stdout

    def start(self, line: str) -> None:
        log = self.folder / f"process-{len(self.background)}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                ["bash", "-c", "exec " + line],
                cwd=self.folder,
                env=self.env,
                stdout=out,
                stderr=out,
            )
        self.background.append((line, process, log))
        port = re.search(r"--port (\d+)|-c nginx.conf", line)
        if port is not None:  # a gateway, or nginx on the first port: wait until it answers
            url = f"http://127.0.0.1:{port.group(1) or self.ports[0]}/healthz"
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(url, timeout=1).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)

    def output(self, part: str) -> str:
        """The output of the last line run that contains ``part``."""
        return next(out for line, out in reversed(self.outputs) if part in line)

    def stop_all(self) -> list[int]:
        for _, process, _ in self.background:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for _, process, _ in self.background:
            try:
                codes.append(process.wait(timeout=40))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes


def _json_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_the_operations_walkthrough_runs_as_written(database_url: str, tmp_path: Path) -> None:
    """Two `serve`, a worker and nginx as the page configures it; the page's calls through each
    gateway and through nginx; every process stops with exit 0; nginx logs the client address
    and the gateway's request id, which the partner got and the gateway logged."""
    assert shutil.which("nginx") or Path("/usr/sbin/nginx").exists(), "make toolchains"
    section = _walkthrough()
    env = clean_env(database_url, GATEWAY_DATA_DIR=str(tmp_path / "data"))
    env["PATH"] = f"{BIN.parent}:{env['PATH']}:/usr/sbin"
    shell = _Terminal(tmp_path, env, [free_port(), free_port(), free_port()])
    (nginx_conf,) = _blocks(section, "nginx")
    (tmp_path / "nginx.conf").write_text(shell.fill(nginx_conf) + "\n")
    try:
        for block in _blocks(section, "bash"):
            for line in filter(None, (raw.strip() for raw in block.splitlines())):
                line = shell.fill(line)
                if line.startswith(_LONG_RUNNING):
                    shell.start(line)
                    continue
                until = _UNTIL.search(line)
                deadline = time.monotonic() + 90
                while until is not None and until.group("text") not in shell.run(line):
                    assert time.monotonic() < deadline, shell.outputs[-1]
                    time.sleep(0.2)
                if until is None:
                    shell.run(line)
    finally:
        codes = shell.stop_all()
    assert [line.split()[0] for line, _, _ in shell.background] == [
        "partner-gateway",
        "partner-gateway",
        "partner-gateway",
        "nginx",
    ]
    assert codes == [0, 0, 0, 0]

    deleted = json.loads(shell.output("call --ids "))
    assert deleted["status"] == 200
    assert deleted["body"]["data"]["summary"] == {"total": 1, "succeeded": 1, "failed": 0}
    assert json.loads(shell.output("call --ids-file"))["status"] == 202
    done = json.loads(shell.output(f"127.0.0.1:{shell.ports[2]} partner-gateway call --batch"))
    assert done["body"]["data"]["status"] == "completed"
    assert done["body"]["data"]["summary"] == {"total": 2500, "succeeded": 2499, "failed": 1}
    assert [e["code"] for e in done["body"]["data"]["errors"]] == ["PRD_014"]
    via_nginx = json.loads(shell.output(f"127.0.0.1:{shell.ports[0]} partner-gateway call"))
    assert via_nginx["status"] == 200
    assert via_nginx["body"]["data"]["summary"] == done["body"]["data"]["summary"]
    assert json.loads(shell.output("/readyz"))["message"] == "Ready"
    assert shell.output("http_code").strip() == "404"  # not routed through nginx
    metrics = shell.output("/metrics | grep").splitlines()
    assert "gateway_batch_chunks_total 3.0" in metrics
    assert 'gateway_entries_total{mode="batch",outcome="deleted"} 2499.0' in metrics
    assert "gateway_workers_alive 1.0" in metrics

    # The partner's request id of the read through nginx: in nginx's access log, with the
    # client's address, and in the log line of the gateway that answered, with that address.
    request_id = via_nginx["body"]["requestId"]
    access = (tmp_path / "nginx-access.log").read_text().splitlines()
    (through,) = [line for line in access if f"request_id={request_id} " in line]
    assert through.startswith("127.0.0.1 ")
    gateway_lines = [line for _, _, log in shell.background[:2] for line in _json_lines(log)]
    (answered,) = [line for line in gateway_lines if line.get("request_id") == request_id]
    assert (answered["event"], answered["status"], answered["client"]) == (
        "request",
        200,
        "127.0.0.1",
    )
    assert answered["partner"] == shell.values["partnerClientId"]
    assert abs(answered["clock_skew_ms"]) < 300_000  # the partner's clock is the gateway's
    assert all({"host", "pid"} <= line.keys() for line in gateway_lines if "event" in line)
    worker_events = [line.get("event") for line in _json_lines(shell.background[2][2])]
    assert "worker stopping" in worker_events  # the event the page names
