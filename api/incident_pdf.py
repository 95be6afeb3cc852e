"""An incident's report for an entity, as a PDF (fpdf2, drawn with the pieces of
certification.docpdf): its fields, its SLA clocks, what was seen and its timeline,
as that entity may read them (incidents.views under TLP: no TLP:RED entry, no
other entity's items). Words from the catalogue, in the reader's language."""

from __future__ import annotations

from typing import Any

from certification.docpdf import Doc
from core.i18n import translator


def _when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "-"


def incident_pdf(
    inc: dict[str, Any], clocks: list[dict[str, Any]], issuer: str, lang: str, entity: str | None
) -> bytes:
    t = translator(lang)

    def of(family: str, code: str) -> str:  # a vocabulary value in words
        return t(f"{family}.{code}")

    doc = Doc(issuer, t("inc.pdf.title", id=inc["id"]))
    doc.title_line(f"#{inc['id']} - {inc['title']}")
    if entity:
        doc.field(t("alerts.entity"), entity)
    doc.field(t("alerts.status"), of("inc.state", inc["status"]))
    if inc.get("resolution"):
        doc.field(t("inc.resolution"), of("resolution", inc["resolution"]))
    doc.field(t("inc.priority"), f"{inc['priority']} (NCISS {inc['ncciss']})")
    rsit = inc["rsit"]
    if rsit["class"]:
        kind = of("rsit", rsit["class"])
        if rsit["type"]:
            kind += " / " + of("rsit", f"{rsit['class']}/{rsit['type']}")
    else:
        kind = t("inc.unclassified")
    doc.field("RSIT", kind)
    doc.field("TLP / PAP", f"TLP:{inc['tlp']} / PAP:{inc['pap']}")
    doc.field(t("inc.opened"), _when(inc["created_at"]))
    if inc.get("summary"):
        doc.section(t("inc.summary"))
        doc.text_block(inc["summary"])
    if clocks:
        doc.section(t("inc.sla"))
        doc.grid(
            [t("inc.sla.clock"), t("inc.due"), t("inc.sla.met")],
            [
                [
                    of("inc.clock", c["clock"]) + (f" ({c['entity']})" if c["entity"] else ""),
                    _when(c["due"]),
                    _when(c["met"]),
                ]
                for c in clocks
            ],
            [70, 50, 50],
        )
    if inc["observables"]:
        doc.section(t("inc.observables"))
        doc.grid(
            [t("alerts.type"), t("alerts.seen"), "TLP"],
            [[o["type"], o["value"], o["tlp"]] for o in inc["observables"]],
            [35, 120, 25],
        )
    doc.section(t("inc.timeline"))
    rows = []
    for e in inc["timeline"]:
        what = of("inc.kind", e["kind"])
        data = e.get("data") or {}
        if e["kind"] == "status" and data:
            what += f": {of('inc.state', data['from'])} -> {of('inc.state', data['to'])}"
        rows.append([_when(e["at"]), what, e.get("entity") or "", e.get("body") or ""])
    doc.grid(
        [t("alerts.when"), t("inc.pdf.what"), t("alerts.entity"), t("inc.pdf.detail")],
        rows,
        [32, 40, 30, 78],
    )
    return bytes(doc.output())
