"""The layout's rules, read from the code's imports (module-level and inside functions alike):
no import loop anywhere, the mapping imports no engine module, the Intercom client no model,
the engine (forwarding) nothing of the dashboard."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "forwarding", "dashboard")


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    """{module: path} of the project's own code (migrations left out: Django orders them)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def imports(path, known):
    """The project modules `path` imports, by their module names."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import module` imports the module; `from module import name`, the module.
            names = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph():
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def cycles(edges):
    """Each import loop, as the list of modules around it (Tarjan's strongly connected parts)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_imports(edges, source):
    """Every (module, imported module) from the modules of `source`."""
    return {(name, target) for name, targets in edges.items() if name.startswith(source) for target in targets}


def test_no_module_imports_itself_back():
    assert cycles(graph()) == []


def test_the_mapping_imports_no_engine_module():
    assert not [t for _, t in package_imports(graph(), "forwarding.mapping") if t.startswith("forwarding.")]


def test_the_intercom_client_imports_no_model():
    assert not [t for _, t in package_imports(graph(), "forwarding.intercom") if t.startswith("forwarding.")]


def test_the_engine_imports_nothing_of_the_dashboard():
    assert not [(s, t) for s, t in package_imports(graph(), "forwarding") if t.startswith("dashboard")]


def test_the_checker_finds_a_loop():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
