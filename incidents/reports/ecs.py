"""A report row's ECS document (`event.kind: event`), compiled once per file.

The format's column mapping becomes one generated function that reads the row's
cells by position and returns the document's JSON text: no loop over the mapping,
no nested `get` chains and no second pass per row. The plan also says where the
port and the threat name come from, so the row builder reads them from the cells
instead of from the document."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson


def as_int(v: str) -> int | str:
    try:
        return int(v)
    except ValueError:
        return v


def _tags(v: str) -> list[str]:
    if "," not in v and ";" not in v:
        return [v.strip()]
    return [t.strip() for t in re.split(r"[;,]", v) if t.strip()]


CONVERT: dict[str, Callable[[str], Any]] = {
    "port": as_int,
    "number": as_int,
    "tags": _tags,
    "confidence": as_int,
}

# (row, @timestamp, event.id, event.severity, event.severity_name, host, vigia) → JSON
DocFn = Callable[[list[str], str, str, int, str, dict[str, str], dict[str, Any]], Any]
Leaf = tuple[int, Callable[[str], Any] | None]


@dataclass(frozen=True)
class DocPlan:
    build: DocFn
    port: Leaf | None  # the cell behind destination.port
    threat: Leaf | None  # … and behind threat.software.name
    # The mapping fills `organization` itself (a generic CSV may): then the document
    # comes as a dict, for the intake to set the entity in place.
    as_dict: bool


def _leaf(tree: dict[str, Any], *path: str) -> Leaf | None:
    node: Any = tree
    for p in path:
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node if isinstance(node, tuple) else None


def compile_doc(
    plan: list[tuple[int, tuple[str, ...], Any]],
    labels: list[tuple[int, str]],
    base: dict[str, str],
) -> DocPlan:
    """`plan`: (cell, ECS path, converter) per mapped column; `labels`: (cell, column)
    for the unmapped ones; `base`: the event fields every row shares."""
    tree: dict[str, Any] = {}
    for i, path, conv in plan:
        node = tree
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            if path[-1] not in node:  # the first column mapped to a field wins
                node[path[-1]] = (i, conv)
    as_dict = "organization" in tree
    env: dict[str, Any] = {"dumps": orjson.dumps, "BASE": base}
    lines = ["def build(row, iso, key, sev, sevname, host, vigia):", "    doc = {}"]
    counter = itertools.count()

    def emit(node: dict[str, Any], target: str) -> None:
        for key, val in node.items():
            if isinstance(val, dict):
                sub = f"d{next(counter)}"
                lines.append(f"    {sub} = {{}}")
                emit(val, sub)
                lines.append(f"    if {sub}: {target}[{key!r}] = {sub}")
            else:
                i, conv = val
                lines.append(f"    v = row[{i}]")
                if conv is None:
                    lines.append(f"    if v: {target}[{key!r}] = v")
                else:
                    name = f"c{next(counter)}"
                    env[name] = conv
                    lines.append(f"    if v: {target}[{key!r}] = {name}(v)")

    emit(tree, "doc")
    lines.append("    doc['@timestamp'] = iso")
    if labels:
        lines.append("    lab = {}")
        for i, col in labels:
            lines += [f"    v = row[{i}]", f"    if v: lab[{col!r}] = v"]
        lines.append("    if lab: doc.setdefault('labels', {}).update(lab)")
    own_event = "**doc.get('event', {}), " if "event" in tree else ""
    lines += [
        f"    doc['event'] = {{**BASE, {own_event}'id': key, 'severity': sev, "
        "'severity_name': sevname}",
        "    doc['host'] = host",
        "    doc['vigia'] = vigia",
        "    return doc" if as_dict else "    return dumps(doc).decode()",
    ]
    exec("\n".join(lines), env)
    return DocPlan(
        env["build"],
        _leaf(tree, "destination", "port"),
        _leaf(tree, "threat", "software", "name"),
        as_dict,
    )
