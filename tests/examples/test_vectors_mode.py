"""The vector file travels with the example clients, and each client's vectors mode works from
its own copied folder, by its README's command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import signing
from gateway.auth import masked_string_to_sign
from tests.examples.clients import EXAMPLES, LANGUAGES, VECTORS, run, system_env, tool
from tests.live import ROOT

# --- the files travel together -----------------------------------------------------------------


def test_the_vector_file_travels_with_the_examples_and_is_the_tests_one() -> None:
    assert (EXAMPLES / "vectors" / "signing_v1.json").read_bytes() == VECTORS.read_bytes()


def test_the_go_example_is_a_module_of_the_repositorys_go_work() -> None:
    """`go run .` works from examples/go because its go.mod travels with it; go.work at the
    root names that same folder, so `go run ./examples/go` works from the root too."""
    assert (EXAMPLES / "go" / "go.mod").is_file()
    assert "use ./examples/go" in (ROOT / "go.work").read_text()


# --- vectors mode, from the copied folder ------------------------------------------------------


#: The vectors command each README gives, to run from the example's own folder.
README_VECTORS = {
    "curl": "bash delete-products.sh --vectors ../vectors/signing_v1.json",
    "python": "python3 delete_products.py --vectors ../vectors/signing_v1.json",
    "node": "node delete-products.mjs --vectors ../vectors/signing_v1.json",
    "go": "go run . --vectors ../vectors/signing_v1.json",
    "java": "java DeleteProducts.java --vectors ../vectors/signing_v1.json",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_passes_every_vector_from_its_own_folder(language: str, copies: Path) -> None:
    """Run exactly as the README says, from the copied folder with only the system's tools."""
    readme = (EXAMPLES / language / "README.md").read_text("utf-8")
    assert f"`{README_VECTORS[language]}`" in readme
    name, *args = README_VECTORS[language].split()
    count = len(json.loads(VECTORS.read_text("utf-8"))["cases"])
    result = subprocess.run(
        [tool(name), *args],
        cwd=copies / language,
        env=system_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"{count} passed, 0 failed"
    assert sum(line.startswith("ok ") for line in lines) == count


def _foreign_vectors(folder: Path) -> Path:
    """A vector file that is not ours: other credentials, secrets and bodies."""
    cases = []
    for n, (body, query) in enumerate([("", "a=1"), ('{"ids":["x"]}', ""), ("ü", "q=%C3%BC")]):
        inputs = {
            "method": "PUT" if n else "GET",
            "path": f"/other/{n}",
            "query": query,
            "partnerClientId": f"p{n}",
            "storeClientId": f"s{n}",
            "storeToken": f"token-of-store-{n}",
            "timestamp": str(1_700_000_000_000 + n),
            "body": body,
        }
        message = signing.string_to_sign(
            method=inputs["method"],
            path=inputs["path"],
            query=query,
            partner_client_id=inputs["partnerClientId"],
            store_client_id=inputs["storeClientId"],
            store_token=inputs["storeToken"],
            timestamp=inputs["timestamp"],
            body_hash=signing.body_sha256(body.encode()),
        )
        cases.append(
            {
                "name": f"foreign {n}",
                "expect": "valid",
                "secrets": [f"other-secret-{n}"],
                **inputs,
                "bodySha256": signing.body_sha256(body.encode()),
                "stringToSign": message,
                "signature": signing.sign(f"other-secret-{n}", message),
            }
        )
    path = folder / "foreign.json"
    path.write_text(json.dumps({"version": 1, "cases": cases}), encoding="utf-8")
    return path


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_checks_other_vector_files_and_skips_the_masked_token_line(
    language: str, copies: Path, tmp_path: Path
) -> None:
    foreign = _foreign_vectors(tmp_path)
    ok = run(copies, language, ["--vectors", str(foreign)])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == "3 passed, 0 failed"

    document = json.loads(foreign.read_text())
    cases = document["cases"]
    # Case 0's string to sign as an AUTH_002 answer shows it: the token masked, nothing else.
    cases[0]["stringToSign"] = masked_string_to_sign(
        cases[0]["stringToSign"], cases[0]["storeToken"]
    )
    # From an AUTH_002 whose body differed: line 6 masked, line 8 the server's body hash.
    server_side = dict(cases[1], name="from an AUTH_002")
    cases[1]["signature"] = "0" * 64
    cases[2]["body"] = "u"
    lines = masked_string_to_sign(cases[1]["stringToSign"], cases[1]["storeToken"]).split("\n")
    server_side["stringToSign"] = "\n".join([*lines[:7], signing.body_sha256(b"other")])
    cases.append(server_side)
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(document), encoding="utf-8")
    bad = run(copies, language, ["--vectors", str(tampered)])
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = bad.stdout.strip().splitlines()
    assert lines[0] == "ok foreign 0"
    assert lines[-1] == "1 passed, 3 failed"
    assert any(line.startswith("FAIL foreign 1") for line in lines)
    assert any(line.startswith("FAIL foreign 2") for line in lines)
    assert lines[3] == (
        "FAIL from an AUTH_002: stringToSign differs from the one built from the inputs at line 8"
    )
