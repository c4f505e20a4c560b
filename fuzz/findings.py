"""Findings: each one a reproducible request, the invariant it broke, and how to replay it."""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["INVARIANTS", "Finding", "Findings"]

#: Every invariant the campaign checks, by the name a finding carries.
INVARIANTS = {
    "500": "no answer is a 500 (nor a 500 counted in /metrics)",
    "unsigned-deletion": "nothing is accepted, nor deleted, without a valid signature in the"
    " request's own headers",
    "replay": "a signed request is accepted at most once",
    "envelope": "every answer is the contract's JSON envelope with its request id, or the"
    " connection is closed",
    "slow": "every answer (or close) comes within its bound, and /healthz stays fast meanwhile",
    "answer": "a hostile input gets the exact status and code of its table",
}
_SHOWN = 2048  # bytes of a raw request printed; the whole of it is in the finding's .bin file


@dataclass
class Finding:
    """One broken invariant, with the request that broke it."""

    invariant: str
    part: str  # attacker, schema, hostile, raw
    case: str
    detail: str
    raw: bytes = b""  # the request exactly as sent, when the campaign built it byte for byte
    method: str = ""
    url: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    signed: bool = False  # re-sign with a fresh x-timestamp to replay (else AUTH_003/AUTH_006)

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.invariant}|{self.part}|{self.case}".encode()).hexdigest()[:12]

    def replay_lines(self, folder: Path, host: str, port: int) -> list[str]:
        """A Python line that sends the raw bytes again, and a curl line when there is a URL."""
        lines = []
        if self.raw:
            path = folder / f"{self.key}.bin"
            lines.append(
                'python3 -c "import socket; s = socket.create_connection(('
                f"'{host}', {port})); s.sendall(open('{path}', 'rb').read());"
                ' print(s.recv(65536).decode(\\"latin-1\\"))"'
            )
        if self.url:
            curl = ["curl", "-sS", "-i", "-X", self.method, self.url]
            for name, value in self.headers:
                curl += ["-H", f"{name}: {value}"]
            if self.body:
                curl += ["--data-binary", f"@{folder / self.key}.body"]
            lines.append(" ".join(shlex.quote(part) for part in curl))
        if self.signed:
            lines.append(f"python -m fuzz replay {folder / self.key}.json  # signed anew")
        if self.part in ("raw", "hostile"):
            lines.append(f"python -m fuzz --only {shlex.quote(self.case)}  # the case, built anew")
        return lines


class Findings:
    """The run's findings, each reported once, and kept under ``folder`` between runs."""

    def __init__(self, folder: Path, host: str, port: int) -> None:
        self.folder = folder
        self.host, self.port = host, port
        self.found: dict[str, Finding] = {}
        self.repeats: dict[str, int] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, finding: Finding) -> None:
        if finding.key in self.found:
            self.repeats[finding.key] += 1
            return
        self.found[finding.key] = finding
        self.repeats[finding.key] = 1
        self._save(finding)
        self._print(finding)

    def _save(self, finding: Finding) -> None:
        stem = self.folder / finding.key
        if finding.raw:
            stem.with_suffix(".bin").write_bytes(finding.raw)
        if finding.body:
            stem.with_suffix(".body").write_bytes(finding.body)
        record = asdict(finding)
        record.update(
            raw=finding.raw[:_SHOWN].decode("latin-1"),
            body=finding.body[:_SHOWN].decode("latin-1"),
            foundAt=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            invariantText=INVARIANTS[finding.invariant],
            replay=finding.replay_lines(self.folder, self.host, self.port),
        )
        stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")

    def _print(self, finding: Finding) -> None:
        shown = finding.raw or _as_raw(finding)
        more = f" ... ({len(shown):,} bytes in all)" if len(shown) > _SHOWN else ""
        print(f"\nFINDING {finding.key} [{finding.invariant}] {finding.part}/{finding.case}")
        print(f"  broke: {INVARIANTS[finding.invariant]}")
        print(f"  {finding.detail}")
        print("  request:")
        for line in shown[:_SHOWN].decode("latin-1").split("\r\n"):
            print(f"    {line!r}"[:300])
        if more:
            print(f"    {more}")
        print("  replay:")
        for line in finding.replay_lines(self.folder, self.host, self.port):
            print(f"    {line}")
        print(flush=True)

    def summary(self) -> str:
        if not self.found:
            return "no findings"
        lines = [f"{len(self.found)} finding(s):"]
        for key, finding in self.found.items():
            lines.append(
                f"  {key} [{finding.invariant}] {finding.part}/{finding.case}"
                f" (seen {self.repeats[key]}x): {finding.detail}"[:300]
            )
        return "\n".join(lines)


def _as_raw(finding: Finding) -> bytes:
    head = [f"{finding.method} {finding.url} HTTP/1.1"]
    head += [f"{name}: {value}" for name, value in finding.headers]
    return "\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + finding.body
