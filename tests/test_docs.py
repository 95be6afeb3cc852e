"""The docs cannot drift: every claim in README.md and docs/status.md names the test that proves it.

The convention is in docs/proofs.md; the parser in tests/docproofs.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.docproofs import faults, parse

ROOT = Path(__file__).resolve().parent.parent

# Where every block must carry a proof, and the sections of each that claim nothing
# (README's preamble and package map; status.md's preamble has no `##` heading).
ENFORCED: dict[str, set[str]] = {
    "README.md": {"Layout"},
    "docs/status.md": set(),
}


def documents() -> list[str]:
    return ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]


def test_every_proof_names_a_test_and_every_claim_has_one() -> None:
    found = []
    for name in documents():
        doc = parse(name, (ROOT / name).read_text())
        found += faults(doc, ROOT, name in ENFORCED, ENFORCED.get(name, set()))
    assert not found, "\n".join(found)


def test_the_enforced_documents_carry_proofs() -> None:
    """Guards the guard: a parser that read nothing would pass the test above."""
    for name in ENFORCED:
        doc = parse(name, (ROOT / name).read_text())
        proven = [b for b in doc.blocks if b.proofs]
        assert len(proven) >= 20, f"{name}: only {len(proven)} proven blocks were read"
    readme = parse("README.md", (ROOT / "README.md").read_text())
    assert {c.text for c in readme.commands} >= {"vigia scan", "vigia sensor run"}


SAMPLE = """\
# Title
Preamble, claims nothing checked.

## Features
A proven paragraph
over two lines.
proof: tests/test_docs.py::test_every_proof_names_a_test_and_every_claim_has_one

An unproven paragraph.

- a proven item,
  proof: `tests/test_docs.py::test_the_checker_finds_what_is_wrong[x]`
- an unproven item

<!-- not a claim: how to install -->
pip install it, a non-claim.

Work in flight.
pending: issue 12, the lead links it

```sh
vigia scan a.pcap --out x
vigia entity add min-salud --name X
vigia backup FILE
```

| command | proof |
|---|---|
| `vigia scan` | tests/test_docs.py::test_every_proof_names_a_test_and_every_claim_has_one |
| `vigia entity add` | tests/test_nothing.py::test_y |
| `GET /x?format=json\\|csv` | tests/test_docs.py::test_gone |

| route | roles |
|---|---|
| `GET /y` | admin |

## Layout
Not enforced here.
"""


def test_the_checker_finds_what_is_wrong() -> None:
    doc = parse("sample.md", SAMPLE)
    found = faults(doc, ROOT, True, {"Layout"})
    text = "\n".join(found)
    assert "'An unproven paragraph.'" in text
    assert "'- an unproven item'" in text
    assert "tests/test_nothing.py does not exist" in text
    assert "tests/test_docs.py has no test test_gone" in text  # the escaped pipe kept the cell
    assert "the command has no row `vigia backup` with a proof" in text
    assert "(the table has no 'proof' column)" in text
    assert len(found) == 6, text  # nothing else: the proven, exempt, pending and Layout pass
    assert {c.text for c in doc.commands} == {"vigia scan", "vigia entity add", "vigia backup"}
    assert faults(doc, ROOT, False, set()) == found[:2]  # not enforced: refs only


def test_malformed_markers_are_named() -> None:
    bad = "## S\nproof: tests/test_docs.py::test_malformed_markers_are_named\n\nA claim.\n"
    bad += "pending: someday\nproof: test_docs.py::x\n"
    found = faults(parse("bad.md", bad), ROOT, True, set())
    assert any("no claim above" in f for f in found)
    assert any("must name the issue" in f for f in found)
    assert any("is not of the form" in f for f in found)


# names the config file, a build switch, the language of the CLI's help
NOT_SETTINGS = {"VIGIA_CONFIG", "VIGIA_PURE_PYTHON", "VIGIA_LANG", "VIGIA_TEST_WORKERS"}
DEFAULT = re.compile(r"`(VIGIA_[A-Z0-9_]+)`\s*(?:\(([^);]*)|(\d[\d.]*))")


def literal(text: str) -> object:
    """`24` → 24, `0.8` → 0.8, `true` → True, `60, 30, 7` → [60, 30, 7]; else None."""
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [float(p) if "." in p else int(p) for p in parts]
    except ValueError:
        return None
    return numbers if len(numbers) > 1 else numbers[0]


def test_every_setting_the_docs_name_exists_with_its_default() -> None:
    from core.settings import Settings

    fields = Settings.model_fields
    found = []
    for name in ENFORCED:
        text = (ROOT / name).read_text()
        for setting in set(re.findall(r"\bVIGIA_[A-Z0-9_]+", text)) - NOT_SETTINGS:
            if not setting.endswith("_") and setting[6:].lower() not in fields:
                found.append(f"{name}: {setting} is no setting")
        for setting, bracketed, bare in DEFAULT.findall(text):
            stated = literal(bracketed or bare)
            field = fields.get(setting[6:].lower())
            if stated is None or field is None:
                continue
            actual = field.get_default(call_default_factory=True)
            if stated != actual:
                found.append(f"{name}: {setting} is said to default to {stated}, not {actual}")
    assert not found, "\n".join(found)


def cli_options() -> dict[str, set[str]]:
    """`vigia token create` → its long options, read from the Typer app (no process)."""
    import typer.main

    from vigia.cli import app

    found: dict[str, set[str]] = {}

    def walk(command: object, path: str) -> None:
        subs = getattr(command, "commands", None)
        if subs is not None:
            for name, sub in subs.items():
                walk(sub, f"{path} {name}")
        else:
            params = getattr(command, "params", [])
            found[path] = {o for p in params for o in [*p.opts, *p.secondary_opts]}

    walk(typer.main.get_command(app), "vigia")
    return found


def synopsis_faults(text: str, options: dict[str, set[str]]) -> list[str]:
    """Commands and `--options` of the ```sh blocks' `vigia …` lines that the CLI lacks."""
    from tests.docproofs import COMMAND

    found, command = [], ""
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0]  # a comment after the command
            if line.startswith("vigia "):
                match = COMMAND.match(line)
                assert match
                command = match.group(0)
                if command not in options:
                    found.append(f"no command {command!r}")
                    command = ""
                    continue
            elif not line.startswith(" ") or not command:
                command = ""  # not a continuation of a command
                continue
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line):
                if flag not in options[command]:
                    found.append(f"`{command}` has no option {flag}")
    return found


def test_every_command_and_option_the_synopsis_shows_exists() -> None:
    """The README's synopsis once showed `vigia sensor run --deep`, a flag that never was."""
    options = cli_options()
    assert {"vigia scan", "vigia sensor run", "vigia token create"} <= set(options)
    found = synopsis_faults((ROOT / "README.md").read_text(), options)
    assert not found, "\n".join(found)
    sample = "```sh\nvigia sensor run --pcap F \\\n   --deep\nvigia nothing here\n```\n"
    assert synopsis_faults(sample, options) == [
        "`vigia sensor run` has no option --deep",
        "no command 'vigia nothing here'",
    ]


def table_paths(text: str) -> set[str]:
    """The absolute paths in the first cell of README's route table (`…/x` ones are relative)."""
    start = text.index("| route | roles |")
    paths: set[str] = set()
    for row in text[start:].split("\n\n", 1)[0].splitlines()[2:]:
        first = re.split(r"(?<!\\)\|", row)[1]
        for span in re.findall(r"`([^`]*)`", first):
            for path in re.findall(r"(?:^|\s)(/[^\s?\[]*)", span):
                head, _, tail = path.replace("\\|", "|").rpartition("/")
                paths |= {f"{head}/{alt}" for alt in tail.split("|")}
    return paths


def test_every_route_in_the_api_table_exists(sqlite_services: object) -> None:
    from api.app import create_app

    app = create_app(sqlite_services)  # type: ignore[arg-type]

    def walk(routes: list[Any]) -> list[list[str]]:  # as tests/test_api.py's route matrix does
        found = []
        for r in routes:
            if hasattr(r, "original_router"):  # an included router, resolved lazily
                found += walk(r.original_router.routes)
            elif isinstance(getattr(r, "path", None), str):
                found.append(r.path.split("/"))
        return found

    served = walk(app.routes)

    def exists(path: str) -> bool:  # a served `{param}` takes any segment
        parts = path.split("/")
        return any(
            len(route) == len(parts)
            and all(a == b or a.startswith("{") for a, b in zip(route, parts, strict=True))
            for route in served
        )

    assert exists("/api/v1/alerts/{id}") and not exists("/api/v1/alertas")
    paths = table_paths((ROOT / "README.md").read_text())
    assert len(paths) > 40 and "/api/v1/certificates/{id}/revoke" in paths
    assert sorted(p for p in paths if not exists(p)) == []
