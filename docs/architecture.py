"""Draw docs/architecture.svg: the relay's parts and who imports whom, from the code's imports.

Run from the repository's root: .venv/bin/python docs/architecture.py
Each box is a module of forwarding/ (the delivery engine's modules grouped in their package's
frame) or a whole package (ingestion, sandbox, models, dashboard); an arrow points from the
importer to the imported. Rows: a part stands above every part it imports."""

import ast
from collections import defaultdict
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "architecture.svg"
# Packages drawn as one box each; everything else in forwarding/ is a box of its own.
WHOLE = ("forwarding.ingestion", "forwarding.sandbox", "forwarding.models", "forwarding.management", "dashboard")
LEFT_OUT = ("forwarding.migrations", "forwarding.apps", "forwarding.admin", "forwarding.checks", "forwarding.urls")
BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 34, 18, 56, 24


def part_of(module):
    """The box a module is drawn in, or None."""
    if module.startswith(LEFT_OUT) or not module.startswith(("forwarding", "dashboard")):
        return None
    for whole in WHOLE:
        if module == whole or module.startswith(whole + "."):
            return whole
    return module


def modules():
    found = {}
    for package in ("forwarding", "dashboard"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def edges():
    known = modules()
    arrows = defaultdict(set)
    for name, path in known.items():
        source = part_of(name)
        if source is None or name == "forwarding":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
                ]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                part = part_of(target)
                if part and part != source and target != "forwarding":
                    arrows[source].add(part)
        arrows.setdefault(source, set())
    return arrows


def rows(arrows):
    """Parts by row: a part's row is one below the lowest row of those importing it (longest path)."""
    depth = {}

    def level(part, seen=()):
        if part not in depth:
            depth[part] = 1 + max((level(t, seen + (part,)) for t in arrows.get(part, ()) if t not in seen), default=-1)
        return depth[part]

    for part in arrows:
        level(part)
    top = max(depth.values())
    grouped = defaultdict(list)
    for part, d in depth.items():
        grouped[top - d].append(part)
    return [sorted(grouped[r], key=lambda p: (not p.startswith("forwarding.delivery"), p)) for r in sorted(grouped)]


def label(part):
    return (
        part.replace("forwarding.delivery.", "delivery/").replace("forwarding.", "").replace("dashboard", "dashboard/")
    )


def svg(arrows):
    layout = rows(arrows)
    width = MARGIN * 2 + max(len(r) for r in layout) * (BOX_W + GAP_X)
    height = MARGIN * 2 + len(layout) * (BOX_H + GAP_Y) + 20
    where = {}
    for r, parts in enumerate(layout):
        offset = (width - len(parts) * (BOX_W + GAP_X)) / 2
        for c, part in enumerate(parts):
            where[part] = (offset + c * (BOX_W + GAP_X), MARGIN + 20 + r * (BOX_H + GAP_Y))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        'font-family="sans-serif" font-size="12">',
        '<defs><marker id="a" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#8a9bb0"/></marker></defs>',
        f'<rect width="100%" height="100%" fill="white"/><text x="{MARGIN}" y="{MARGIN}" font-size="14" '
        'font-weight="bold">Intercom Relay: parts and imports (an arrow points at what is imported)</text>',
    ]
    for source, targets in sorted(arrows.items()):
        x1, y1 = where[source]
        for target in sorted(targets):
            x2, y2 = where[target]
            out.append(
                f'<line x1="{x1 + BOX_W / 2:.0f}" y1="{y1 + BOX_H:.0f}" x2="{x2 + BOX_W / 2:.0f}" y2="{y2:.0f}" '
                'stroke="#8a9bb0" stroke-width="1" marker-end="url(#a)" opacity="0.7"/>'
            )
    for part, (x, y) in where.items():
        fill = "#dbe8f5" if part.startswith("forwarding.delivery") else ("#f3e6cf" if part in WHOLE else "#eef1f4")
        out.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="4" fill="{fill}" stroke="#4a6a8a"/>'
        )
        out.append(f'<text x="{x + BOX_W / 2:.0f}" y="{y + 21:.0f}" text-anchor="middle">{escape(label(part))}</text>')
    out.append(
        f'<text x="{MARGIN}" y="{height - 8:.0f}" fill="#555">blue: the delivery engine (forwarding/delivery/); '
        "sand: whole packages; grey: forwarding's other modules</text></svg>"
    )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    OUT.write_text(svg(edges()))
    print(f"wrote {OUT.relative_to(ROOT)}")
