"""Read the proof references out of the Markdown docs (the convention is in docs/proofs.md).

A claim is a block of a document: a paragraph, a list item, a table row, or a
`vigia …` command line in a code block. A block is proven by a line
`proof: tests/test_x.py::test_y, …` (or a table's `proof` column), a figure by
`measured: bench/x.py`, a claim of work in flight by `pending: issue N …`, and
a block that claims nothing is marked `<!-- not a claim: why -->` just before it.
Test names are resolved by reading the test files with `ast`, not by collecting.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"^\s*(proof|measured|pending):\s*(.*?)\s*$")
NOT_A_CLAIM = re.compile(r"^\s*<!--\s*not a claim:\s*(\S.*?)\s*-->\s*$")
ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+")
# `vigia token create …` names the command `vigia token create`: the leading lower-case words
COMMAND = re.compile(r"^vigia(?: [a-z]+(?=\s|$))*")
PENDING = re.compile(r"\bissue \d+\b")


@dataclass
class Block:
    doc: str
    line: int
    section: str  # the `##` heading it sits under ("" before the first)
    kind: str  # paragraph | item | row | command
    text: str
    proofs: list[str] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    not_a_claim: str = ""
    table_has_proof_column: bool = True

    def where(self) -> str:
        return f"{self.doc}:{self.line} ({self.section or 'preamble'}): {self.text[:70]!r}"

    @property
    def backed(self) -> bool:
        return bool(self.proofs or self.measured or self.pending or self.not_a_claim)


@dataclass
class Document:
    name: str
    blocks: list[Block] = field(default_factory=list)
    commands: list[Block] = field(default_factory=list)  # `vigia …` lines in code blocks
    problems: list[str] = field(default_factory=list)  # malformed markers


def split_ids(text: str) -> list[str]:
    return [part.strip().strip("`").strip() for part in text.split(",") if part.strip(" `")]


def cells(row: str) -> list[str]:
    """A table row's cells; `\\|` (also inside code spans, as GFM requires) stays in its cell."""
    body = row.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip() for c in re.split(r"(?<!\\)\|", body)]


def parse(name: str, text: str) -> Document:
    doc = Document(name)
    section = ""
    current: Block | None = None  # the block being read
    exempt = ""  # a `not a claim` marker waiting for its block (or table)
    in_code = False
    code_exempt = ""  # a `not a claim` marker before a code block covers its commands
    table: list[str] | None = None  # the header cells of the table being read
    table_exempt = ""

    def close() -> None:
        nonlocal current
        current = None

    def start(kind: str, line: int, body: str) -> Block:
        nonlocal current, exempt
        current = Block(name, line, section, kind, body.strip(), not_a_claim=exempt)
        exempt = ""
        doc.blocks.append(current)
        return current

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if line.lstrip().startswith("```"):
            in_code = not in_code
            code_exempt, exempt = (exempt, "") if in_code else ("", exempt)
            close()
            continue
        if in_code:
            if raw.startswith("vigia "):
                match = COMMAND.match(raw)
                assert match
                command = Block(name, number, section, "command", match.group(0))
                command.not_a_claim = code_exempt
                doc.commands.append(command)
            continue
        if table is not None and not line.lstrip().startswith("|"):
            table = None
        marker = MARKER.match(line)
        if marker:
            kind, value = marker.groups()
            owner = current or next((b for b in reversed(doc.blocks) if b.section == section), None)
            if owner is None or not value:
                doc.problems.append(f"{name}:{number}: '{kind}:' with no claim above or no value")
                continue
            if kind == "proof":
                owner.proofs += split_ids(value)
            elif kind == "measured":
                owner.measured += split_ids(value)
            else:
                owner.pending.append(value)
            continue
        not_claim = NOT_A_CLAIM.match(line)
        if not_claim:
            close()
            exempt = not_claim.group(1)
            continue
        if not line.strip():
            close()
            continue
        if line.startswith("#"):
            close()
            if line.startswith("## "):
                section = line[3:].strip()
            continue
        if line.lstrip().startswith("|"):
            close()
            row = cells(line)
            if table is None:
                table, table_exempt, exempt = [c.lower() for c in row], exempt, ""
                continue
            if all(re.fullmatch(r":?-+:?", c) for c in row if c):
                continue
            block = Block(name, number, section, "row", line.strip(), not_a_claim=table_exempt)
            if "proof" in table:
                cell = row[table.index("proof")] if table.index("proof") < len(row) else ""
                block.proofs = split_ids(cell)
            else:
                block.table_has_proof_column = False
            doc.blocks.append(block)
            continue
        if ITEM.match(line):
            close()
            start("item", number, line)
        elif current is not None:
            current.text += " " + line.strip()
        else:
            start("paragraph", number, line)
    return doc


def test_names(path: Path) -> set[str]:
    """`test_x` and `TestX::test_y` for each test of a file (parametrised: the base name)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith(
            "test"
        ):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    item.name.startswith("test")
                ):
                    names.add(f"{node.name}::{item.name}")
    return names


def unresolved(ref: str, root: Path, cache: dict[Path, set[str]]) -> str:
    """Why `ref` names no test under `root` ("" when it does)."""
    match = re.fullmatch(r"(tests/[\w/]+\.py)::([\w:]+?)(\[.*\])?", ref)
    if not match:
        return "is not of the form tests/test_x.py::test_y (or ::TestClass::test_y)"
    path = root / match.group(1)
    if not path.is_file():
        return f"{match.group(1)} does not exist"
    if path not in cache:
        cache[path] = test_names(path)
    if match.group(2) not in cache[path]:
        return f"{match.group(1)} has no test {match.group(2)}"
    return ""


def faults(doc: Document, root: Path, enforced: bool, exempt_sections: set[str]) -> list[str]:
    """Every proof that names nothing, and (when `enforced`) every claim without a proof."""
    cache: dict[Path, set[str]] = {}
    found = list(doc.problems)
    for block in doc.blocks:
        for ref in block.proofs:
            why = unresolved(ref, root, cache)
            if why:
                found.append(f"{block.where()}: proof {ref} {why}")
        for path in block.measured:
            if not re.fullmatch(r"bench/[\w/]+\.py", path) or not (root / path).is_file():
                found.append(f"{block.where()}: measured: {path} is no script under bench/")
        for note in block.pending:
            if not PENDING.search(note):
                found.append(f"{block.where()}: pending: must name the issue ('issue N')")
    if not enforced:
        return found
    claims = [b for b in doc.blocks if b.section and b.section not in exempt_sections]
    for block in claims:
        if not block.backed:
            hint = "" if block.table_has_proof_column else " (the table has no 'proof' column)"
            found.append(f"{block.where()}: a claim with no proof{hint}")
    rows = {
        cells(b.text)[0].strip("`"): b
        for b in claims
        if b.kind == "row" and b.proofs and cells(b.text)[0].startswith("`vigia")
    }
    for command in doc.commands:
        checked = command.section and command.section not in exempt_sections
        if checked and not command.backed and command.text not in rows:
            found.append(f"{command.where()}: the command has no row `{command.text}` with a proof")
    return found
