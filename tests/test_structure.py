"""The code's shape, read with ast: small modules and functions, SQL written out whole.

A module of signing/, catalog_store/ or gateway/ over 300 lines, or a function over 60, needs
a reason at its top: a line of its docstring starting ``Long because:``. Every SQL statement
of catalog_store/ is one string a reader can print: never assembled with ``+``, ``%``, an
f-string or ``.format``. And ``catalog_store`` is imported under its own name.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import msgspec

from gateway.wire import DeletionRequest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("signing", "catalog_store", "gateway")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
REASON = "Long because:"
# Words that only a SQL statement writes in capitals; an error message or a log line does not.
_SQL = re.compile(
    r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|WITH|FROM|WHERE|VALUES|RETURNING|JOIN|"
    r"ON CONFLICT|GROUP BY|ORDER BY|CREATE|ALTER|DROP|TRUNCATE|LIMIT)\b"
)


def _modules(*packages: str) -> Iterator[Path]:
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _has_reason(node: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    doc = ast.get_docstring(node) or ""
    return any(line.strip().startswith(REASON) for line in doc.splitlines())


def long_module(source: str) -> bool:
    """Whether a module is over the limit with no reason written at its top."""
    lines = len(source.splitlines())
    return lines > MAX_MODULE_LINES and not _has_reason(ast.parse(source))


def long_functions(source: str) -> list[str]:
    """``qualified.name (N lines)`` of each function over the limit with no reason at its top."""
    found: list[str] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                if length > MAX_FUNCTION_LINES and not _has_reason(child):
                    found.append(f"{prefix}{child.name} ({length} lines)")
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def _strings(node: ast.AST) -> Iterator[str]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub.value


def _sql_names(tree: ast.Module) -> set[str]:
    """Module-level names bound to a string that reads as SQL (whole or assembled)."""
    names: set[str] = set()
    for stmt in tree.body:
        target, value = _assignment(stmt)
        if target is not None and value is not None and _reads_as_sql(value, names):
            names.add(target)
    return names


def _assignment(stmt: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target = stmt.targets[0]
        return (target.id if isinstance(target, ast.Name) else None), stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id, stmt.value
    return None, None


def _reads_as_sql(node: ast.AST, sql_names: set[str]) -> bool:
    if any(_SQL.search(text) for text in _strings(node)):
        return True
    return any(isinstance(sub, ast.Name) and sub.id in sql_names for sub in ast.walk(node))


def assembled_sql(source: str) -> list[str]:
    """``line: how`` of each SQL statement built from pieces rather than written out whole."""
    tree = ast.parse(source)
    sql_names = _sql_names(tree)
    found: list[str] = []
    seen: set[int] = set()
    for node in ast.walk(tree):
        how = _assembly(node)
        if how is None or not _reads_as_sql(node, sql_names):
            continue
        inner = {id(sub) for sub in ast.walk(node) if sub is not node}
        if id(node) not in seen:
            found.append(f"{getattr(node, 'lineno', 0)}: {how}")
        seen |= inner | {id(node)}
    return found


def _assembly(node: ast.AST) -> str | None:
    if isinstance(node, ast.JoinedStr):
        return "f-string"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        if isinstance(node.op, ast.Mod) and not _is_text(node.left):
            return None
        return "+ concatenation" if isinstance(node.op, ast.Add) else "% formatting"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "format":
            return ".format"
    return None


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def test_no_module_of_the_packages_is_over_300_lines_without_a_reason_at_its_top() -> None:
    offenders = {
        _name(path): len(path.read_text().splitlines())
        for path in _modules(*PACKAGES)
        if long_module(path.read_text())
    }
    assert offenders == {}, "\n".join(f"{name}: {lines} lines" for name, lines in offenders.items())


def test_no_function_of_the_packages_is_over_60_lines_without_a_reason_at_its_top() -> None:
    offenders = [
        f"{_name(path)}:{found}"
        for path in _modules(*PACKAGES)
        for found in long_functions(path.read_text())
    ]
    assert offenders == [], "\n".join(offenders)


def test_every_sql_statement_of_the_store_is_one_string_written_out_whole() -> None:
    offenders = [
        f"{_name(path)}:{found}"
        for path in _modules("catalog_store")
        for found in assembled_sql(path.read_text())
    ]
    assert offenders == [], "\n".join(offenders)


def test_the_store_package_is_imported_under_its_own_name_never_as_store() -> None:
    """``import catalog_store as store`` took the domain's word for a store (and led to names
    like ``shop`` for one)."""
    offenders = [
        f"{_name(path)}:{node.lineno}"
        for path in _modules(*PACKAGES, "tests", "bench", "fuzz")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name == "catalog_store" and alias.asname not in (None, "catalog_store")
    ]
    assert offenders == [], "\n".join(offenders)


_LONG_BODY = "    x = 1\n" * 60


def test_the_checks_find_what_they_look_for_and_accept_a_written_reason() -> None:
    assert long_module('"""One line."""\n' + "x = 1\n" * 300)
    assert not long_module('"""One line.\n\nLong because: one table.\n"""\n' + "x = 1\n" * 300)
    assert not long_module('"""One line."""\n' + "x = 1\n" * 298)
    assert long_functions(f"class A:\n  def f(self):\n{_LONG_BODY}") == ["A.f (61 lines)"]
    assert long_functions(f'async def f():\n    """Long because: a table."""\n{_LONG_BODY}') == []
    assert assembled_sql('_A = "SELECT a"\n_B = _A + " WHERE b = %s"\n') == ["2: + concatenation"]
    assert assembled_sql('_C = "x"\nQ = f"SELECT {_C} FROM t"\n') == ["2: f-string"]
    assert assembled_sql('def q(c):\n    return "DELETE FROM t WHERE {}".format(c)\n') == [
        "2: .format"
    ]
    assert assembled_sql('_Q = "SELECT %s" % "a"\n') == ["1: % formatting"]
    assert assembled_sql('_Q = "SELECT a FROM t" " WHERE b = %s"\nM = f"no store {1}"\n') == []


def wire_names_used(source: str, names: frozenset[str]) -> list[str]:
    """``line: name`` of each string literal that is one of the wire's field ``names``."""
    return [
        f"{node.lineno}: {node.value}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
    ]


def test_the_store_does_not_use_the_wire_field_names_as_its_values() -> None:
    # The store says EntryKind.ID / EntryKind.EXTERNAL_ID; gateway/report.py spells them.
    names = frozenset(field.encode_name for field in msgspec.structs.fields(DeletionRequest))
    offenders = [
        f"{_name(path)}:{found}"
        for path in _modules("catalog_store")
        for found in wire_names_used(path.read_text(), names)
    ]
    assert offenders == [], "\n".join(offenders)
    assert wire_names_used('X = ("ids", "externalIds")\nY = "product_ids"\n', names) == [
        "1: ids",
        "1: externalIds",
    ]
