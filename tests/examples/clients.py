"""How the tests run the example clients: each copied alone outside the repository, with the
system's toolchains only (nothing of the project's virtual environment)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.live import ROOT

EXAMPLES = ROOT / "examples"
VECTORS = ROOT / "tests" / "vectors" / "signing_v1.json"
LANGUAGES = ["curl", "python", "node", "go", "java"]
#: The system's toolchains only: nothing of the project's virtual environment.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def tool(name: str) -> str:
    path = shutil.which(name, path=SYSTEM_PATH)
    assert path is not None, f"{name} is not installed: `make test` installs it (see Makefile)"
    return path


def system_env(**extra: str) -> dict[str, str]:
    return {"PATH": SYSTEM_PATH, "HOME": str(Path.home()), "LANG": "C.UTF-8", **extra}


def copy_examples(root: Path) -> Path:
    """Each example folder copied alone, and the vector file beside them, under ``root``. Go and
    Java are built once there, from their own folders (the tests then run the binaries; the README
    commands `go run .` and `java DeleteProducts.java` are run in vectors mode)."""
    assert not root.resolve().is_relative_to(ROOT)
    for language in [*LANGUAGES, "vectors"]:
        shutil.copytree(EXAMPLES / language, root / language)
    env = system_env()
    subprocess.run(
        [tool("go"), "build", "-o", "delete-products", "."],
        cwd=root / "go",
        env=env,
        check=True,
        timeout=300,
    )
    subprocess.run(
        [tool("javac"), "-d", "classes", "DeleteProducts.java"],
        cwd=root / "java",
        env=env,
        check=True,
        timeout=300,
    )
    return root


def command(language: str) -> list[str]:
    """How the tests run each client, from its own copied folder."""
    return {
        "curl": lambda: [tool("bash"), "delete-products.sh"],
        "python": lambda: [tool("python3"), "delete_products.py"],
        "node": lambda: [tool("node"), "delete-products.mjs"],
        "go": lambda: ["./delete-products"],
        "java": lambda: [tool("java"), "-cp", "classes", "DeleteProducts"],
    }[language]()


def run(
    copies: Path, language: str, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(language), *args],
        cwd=copies / language,
        env=env if env is not None else system_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
