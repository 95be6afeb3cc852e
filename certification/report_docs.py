"""The assessment report, for the entity and the CERT, as a PDF and as an XLSX
workbook: each control with the entity's answer and justification, the CERT's
verdict and comment, and the evidence files with their SHA-256 (what the CERT
reviewed is exactly the file of that hash)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from certification import assessments, catalogue
from certification.docpdf import Doc, day
from certification.models import AssessmentRow
from certification.registry import Registry
from core.i18n import RECORD, text

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet


@dataclass(frozen=True)
class EvidenceLine:
    control_id: str
    filename: str
    media_type: str
    size: int
    sha256: str
    expires_on: date
    expired: bool


@dataclass(frozen=True)
class ControlLine:
    id: str
    domain: str
    title: str
    mandatory: bool
    answer: str  # in Spanish; "" when unanswered
    justification: str
    verdict: str  # in Spanish; "" when not reviewed
    comment: str
    evidence: tuple[EvidenceLine, ...]


@dataclass(frozen=True)
class ReportFacts:
    id: int
    entity_id: str
    entity_name: str
    catalogue_version: str
    catalogue_title: str
    status: str  # in Spanish
    decision: str
    decision_reasons: tuple[str, ...]
    score: float | None
    progress: float
    created_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    mandatory_unmet: tuple[str, ...]
    controls: tuple[ControlLine, ...]
    issuer: str

    @property
    def evidence(self) -> list[EvidenceLine]:
        return [e for c in self.controls for e in c.evidence]


STATUS_TEXT = {
    "in_progress": "En curso",
    "submitted": "Enviada",
    "in_review": "En revisión",
    "returned": "Devuelta a la entidad",
    "decided": "Decidida",
}
DECISION_TEXT = {"certified": "Certificada", "conditional": "Certificación condicional"}


def _say(key: str, code: str | None) -> str:
    return text(RECORD, f"{key}.{code}") if code else ""


def report_facts(session: Session, a: AssessmentRow, today: date, issuer: str) -> ReportFacts:
    cat = catalogue.get(session, a.catalogue_version)
    score = assessments.score_of(session, a, today)
    got = assessments.answers_of(session, a)
    ev: dict[str, list[EvidenceLine]] = {}
    for e in assessments.evidence_of(session, a):
        ev.setdefault(e.control_id, []).append(
            EvidenceLine(
                e.control_id,
                e.filename,
                e.media_type,
                e.size,
                e.sha256,
                e.expires_on,
                e.expires_on < today,
            )
        )
    entity = Registry.get(session, a.entity_id)
    controls = []
    for c in cat.controls:
        r = got.get(c.id)
        controls.append(
            ControlLine(
                c.id,
                c.domain,
                c.title,
                c.mandatory,
                _say("cert.ans", r.answer) if r else "",
                r.justification if r else "",
                _say("cert.rev", r.review) if r else "",
                r.review_comment if r else "",
                tuple(ev.get(c.id, ())),
            )
        )
    decision = a.decision or ""
    return ReportFacts(
        id=a.id,
        entity_id=a.entity_id,
        entity_name=entity.name if entity else a.entity_id,
        catalogue_version=a.catalogue_version,
        catalogue_title=cat.title,
        status=STATUS_TEXT.get(a.status, a.status),
        decision=DECISION_TEXT.get(decision, "Denegada" if decision else ""),
        decision_reasons=tuple(a.decision_reasons or ()),
        score=score.overall,
        progress=score.progress,
        created_at=a.created_at,
        submitted_at=a.submitted_at,
        decided_at=a.decided_at,
        mandatory_unmet=tuple(score.mandatory_unmet),
        controls=tuple(controls),
        issuer=issuer,
    )


def _score(f: ReportFacts) -> str:
    return "-" if f.score is None else f"{f.score:.1f} %"


def report_pdf(f: ReportFacts) -> bytes:
    pdf = Doc(f.issuer, f"Informe de la evaluación N.º {f.id}")
    pdf.title_line(f"Informe de autoevaluación N.º {f.id}")
    pdf.field("Entidad", f"{f.entity_name} ({f.entity_id})")
    pdf.field("Catálogo", f"{f.catalogue_title}, versión {f.catalogue_version}")
    pdf.field("Estado", f.status)
    pdf.field("Decisión", f.decision or "-")
    pdf.field("Puntaje", _score(f))
    pdf.field("Avance", f"{f.progress * 100:.0f} % de los controles respondidos")
    pdf.field("Abierta", day(f.created_at))
    pdf.field("Enviada", day(f.submitted_at))
    pdf.field("Decidida", day(f.decided_at))
    if f.mandatory_unmet:
        pdf.field("Obligatorios sin cumplir", ", ".join(f.mandatory_unmet))
    for reason in f.decision_reasons:
        pdf.field("Motivo", reason)
    pdf.section("Controles")
    pdf.grid(
        (
            "Control",
            "Título",
            "Oblig.",
            "Respuesta",
            "Justificación",
            "Veredicto",
            "Comentario del CERT",
        ),
        [
            (
                c.id,
                c.title,
                "Sí" if c.mandatory else "No",
                c.answer or "Sin respuesta",
                c.justification,
                c.verdict or "Sin revisar",
                c.comment,
            )
            for c in f.controls
        ],
        (16, 38, 10, 20, 40, 18, 40),
    )
    pdf.section("Evidencias")
    if f.evidence:
        pdf.grid(
            ("Control", "Archivo", "SHA-256", "Vence"),
            [
                (
                    e.control_id,
                    e.filename,
                    e.sha256,
                    e.expires_on.strftime("%d/%m/%Y") + (" (vencida)" if e.expired else ""),
                )
                for e in f.evidence
            ],
            (16, 45, 95, 26),
        )
    else:
        pdf.text_block("Ninguna evidencia adjunta.")
    return pdf.finish()


CONTROL_COLUMNS = (
    "Control",
    "Dominio",
    "Título",
    "Obligatorio",
    "Respuesta",
    "Justificación",
    "Veredicto",
    "Comentario del CERT",
    "Evidencias (SHA-256)",
)
EVIDENCE_COLUMNS = ("Control", "Archivo", "Tipo", "Tamaño (bytes)", "SHA-256", "Vence", "Vencida")


def _put(ws: Worksheet, row: list[object]) -> None:
    """Append a row whose text stays text: a value typed by an entity that starts
    with '=' is never stored as a formula."""
    ws.append(row)
    for cell in ws[ws.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"


def report_xlsx(f: ReportFacts) -> bytes:
    # Imported here: openpyxl costs every start of the centre a few tenths of a second.
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Controles"
    _put(ws, list(CONTROL_COLUMNS))
    for c in f.controls:
        _put(
            ws,
            [
                c.id,
                c.domain,
                c.title,
                "Sí" if c.mandatory else "No",
                c.answer,
                c.justification,
                c.verdict,
                c.comment,
                "\n".join(f"{e.sha256} {e.filename}" for e in c.evidence),
            ],
        )
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for col, width in zip("ABCDEFGHI", (10, 10, 40, 11, 16, 50, 12, 50, 90), strict=True):
        ws.column_dimensions[col].width = width
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"

    evs = wb.create_sheet("Evidencias")
    _put(evs, list(EVIDENCE_COLUMNS))
    for e in f.evidence:
        _put(
            evs,
            [
                e.control_id,
                e.filename,
                e.media_type,
                e.size,
                e.sha256,
                e.expires_on,
                "Sí" if e.expired else "No",
            ],
        )
    for cell in evs[1]:
        cell.font = Font(bold=True)

    summary = wb.create_sheet("Resumen")
    for label, value in (
        ("Evaluación", f.id),
        ("Entidad", f.entity_name),
        ("Identificador", f.entity_id),
        ("Catálogo", f"{f.catalogue_title}, versión {f.catalogue_version}"),
        ("Estado", f.status),
        ("Decisión", f.decision),
        ("Puntaje", f.score),
        ("Avance", round(f.progress, 4)),
        ("Obligatorios sin cumplir", ", ".join(f.mandatory_unmet)),
        ("Emitido por", f.issuer),
    ):
        _put(summary, [label, value])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
