"""yara-python's own (rule, data, verdict) cases through Vigía's YARA path:
rule files validated and compiled as a pack, content scanned by the matcher."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from rules.yarapack import YaraPackError, compile_pack
from sensors.engine import Content
from sensors.observation import Observation
from tests.conftest import corpus


def _cases() -> list[dict[str, object]]:
    folder = corpus("yara", "yara-python-tests")
    rows = [json.loads(line) for line in (folder / "cases.jsonl").read_text().splitlines()]
    return [r for r in rows if "requires_config" not in r]


def _content(data: bytes) -> Content:
    obs = Observation(0.0, "t", "10.0.0.1", "10.0.0.2", 1, 2, "tcp", "1:x", "http")
    obs.add("file.hash.sha256", "0" * 64)
    return Content(obs, data, "http.response.body")


def test_yara_python_cases_give_their_verdicts(tmp_path: Path) -> None:
    cases = _cases()
    assert len(cases) > 300
    samples = corpus("yara", "yara-python-tests", "samples")
    wrong = []
    for n, case in enumerate(cases):
        folder = tmp_path / f"case{n}"
        folder.mkdir()
        (folder / "rule.yar").write_text(str(case["rule"]))
        try:
            pack = compile_pack([folder])
        except YaraPackError as exc:
            if case["expect"] != "syntax_error":
                wrong.append((n, case["expect"], f"refused: {exc}"))
            elif not str(exc).startswith(str(folder / "rule.yar")):
                wrong.append((n, "error names the file", str(exc)))
            continue
        if case["expect"] == "syntax_error":
            wrong.append((n, "syntax_error", "compiled"))
            continue
        if "data_sample" in case:
            data = (samples / Path(str(case["data_sample"])).name).read_bytes()
        else:
            data = base64.b64decode(str(case.get("data_b64", "")))
        hits = Matcher(IndicatorIndex(), pack).scan(_content(data))
        verdict = "match" if hits else "nomatch"
        if verdict != case["expect"]:
            wrong.append((n, case["expect"], verdict))
    assert wrong == []


@pytest.mark.parametrize("bad", ["rule x { condition: $a }", "rule { }"])
def test_bad_pack_names_file_and_line(tmp_path: Path, bad: str) -> None:
    (tmp_path / "ok.yar").write_text("rule ok { condition: true }\n")
    (tmp_path / "bad.yar").write_text("\n\n" + bad + "\n")
    with pytest.raises(YaraPackError, match=r"bad\.yar:3: "):
        compile_pack([tmp_path])
