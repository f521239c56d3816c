"""The dependency rule (docs/architecture.md), read off the source: which app may import which, and
no import cycle among the project's modules. Parses the files; imports nothing of the project."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "vault",
    "accounts",
    "memories",
    "chat",
    "imports",
)  # each may import only those to its left
# memoryweb's wiring sees every app; its other modules are infrastructure that the apps build on.
WIRING = {
    "memoryweb.settings",
    "memoryweb.bootstrap",
    "memoryweb.urls",
    "memoryweb.api_urls",
    "memoryweb.wsgi",
    "memoryweb.asgi",
}
CHAT_MODELS_FOR_MEMORIES = {"chat.models"}  # the messages memories learn from


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("memoryweb", *APPS):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


MODULES = _modules()


def _resolve(name: str, module: str, level: int, is_package: bool) -> str:
    if not level:
        return name
    base = module.split(".")
    base = base[: len(base) - level + (1 if is_package else 0)]
    return ".".join([*base, name] if name else base)


def _imports(module: str) -> list[tuple[str, int, bool, str]]:
    """(imported project module, line, inside a function, the line's text) for each import in
    `module`."""
    path = MODULES[module]
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    is_package = path.name == "__init__.py"
    functions = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        for n in ast.walk(f)
    }
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", module, node.level, is_package)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                # The statement's own lines and the comment line just above it, for its reason.
                text = "\n".join(lines[max(node.lineno - 2, 0) : node.end_lineno])
                found.append((name, node.lineno, id(node) in functions, text))
    return found


def _app(module: str) -> str:
    return module.split(".")[0]


def _is_task_body_import(module: str, inside_function: bool) -> bool:
    """A task imports its service inside its body (the services import the tasks they queue)."""
    return inside_function and module.rsplit(".", 1)[-1] == "tasks"


def test_each_app_imports_only_the_apps_below_it():
    wrong = []
    for module in MODULES:
        app = _app(module)
        for imported, line, _, _ in _imports(module):
            target = _app(imported)
            if target == app or module in WIRING:
                continue
            if app == "memoryweb" or target == "memoryweb":
                allowed = target == "memoryweb"  # infrastructure: apps use it, it uses no app
            elif app == "memories" and imported in CHAT_MODELS_FOR_MEMORIES:
                allowed = True
            else:
                allowed = APPS.index(target) < APPS.index(app)
            if not allowed:
                wrong.append(f"{module}:{line} imports {imported}")
    assert not wrong, "imports against the dependency rule:\n" + "\n".join(wrong)


def test_memories_never_imports_chat_services():
    assert not [
        m
        for m in MODULES
        if _app(m) == "memories"
        for i, *_ in _imports(m)
        if i.startswith("chat.services")
    ]


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in the graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_late_imports_included():
    """Counting imports inside functions too; only a task's import of its own service is left out,
    as that is what lets services import their tasks at module level."""
    edges: dict[str, set[str]] = {}
    for module in MODULES:
        for imported, _, inside, _ in _imports(module):
            if not _is_task_body_import(module, inside):
                edges.setdefault(module, set()).add(imported)
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_every_late_import_says_why():
    """An import inside a function (other than a task's) needs a comment saying why, on its lines or
    the line just above."""
    silent = [
        f"{module}:{line}: {text.strip()}"
        for module in MODULES
        for _, line, inside, text in _imports(module)
        if inside and not _is_task_body_import(module, inside) and "#" not in text
    ]
    assert not silent, "late imports without a reason:\n" + "\n".join(silent)


def test_the_rule_sees_a_violation():
    """The checks above read real imports: a relative import in a package resolves to its module."""
    assert "memories.extraction.common" in {i for i, *_ in _imports("memories.extraction.rules")}
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
