"""The certificate as a PDF: in Spanish, with the entity, its scope, the catalogue
version, the validity, the state as of now and a QR code to its public
verification page (`/verificar/{id}`), so a printed copy can be checked.

The facts are gathered here (`certificate_facts`) and drawn apart (`certificate_pdf`),
so a test or another format reads the same facts."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

import segno
from sqlalchemy.orm import Session

from certification import catalogue, standing
from certification.docpdf import Doc, day, plain
from certification.errors import CertNotFound
from certification.models import AssessmentRow
from certification.registry import Registry
from core.i18n import RECORD, text

LEVEL_TEXT = {
    "certified": "Certificación plena",
    "conditional": "Certificación condicional",
}


@dataclass(frozen=True)
class CertificateFacts:
    id: str
    entity_id: str
    entity_name: str
    entity_level: str  # the government level, in Spanish
    networks: tuple[str, ...]
    domains: tuple[str, ...]
    level: str  # certified | conditional
    status: str  # valid | expired | suspended | revoked, as of now
    in_force: bool
    score: float
    issued_at: datetime
    valid_until: datetime
    catalogue_version: str
    catalogue_title: str
    assessment_id: int
    observation: str
    reason: str
    verify_url: str
    issuer: str


def verify_url(public_url: str, cert_id: str) -> str:
    return f"{public_url.rstrip('/')}/verificar/{cert_id}"


def certificate_facts(
    session: Session,
    cert_id: str,
    now: datetime,
    public_url: str,
    issuer: str,
    entity_id: str | None = None,
) -> CertificateFacts:
    """The certificate's facts; for an entity caller (`entity_id`), only its own
    (another's reads as missing, the same answer as a wrong id)."""
    v = standing.verify(session, cert_id, now)
    if v is None or (entity_id is not None and v.certificate.entity_id != entity_id):
        raise CertNotFound("certificate.not_found", cert_id=cert_id)
    c = v.certificate
    entity = Registry.get(session, c.entity_id)
    a = session.get(AssessmentRow, c.assessment_id)
    version = a.catalogue_version if a else ""
    cat = catalogue.get(session, version) if version else None
    return CertificateFacts(
        id=c.id,
        entity_id=c.entity_id,
        entity_name=v.entity_name,
        entity_level=text(RECORD, f"level.{entity.level}") if entity else "",
        networks=tuple(entity.networks) if entity else (),
        domains=tuple(entity.domains) if entity else (),
        level=c.level,
        status=v.status,
        in_force=v.in_force,
        score=c.score,
        issued_at=c.issued_at,
        valid_until=c.valid_until,
        catalogue_version=version,
        catalogue_title=cat.title if cat else "",
        assessment_id=c.assessment_id,
        observation=c.observation,
        reason=c.reason,
        verify_url=verify_url(public_url, c.id),
        issuer=issuer,
    )


STATUS_TEXT = {
    "valid": "VIGENTE",
    "expired": "VENCIDO",
    "suspended": "SUSPENDIDO",
    "revoked": "REVOCADO",
}


def qr_png(url: str) -> bytes:
    """The QR code (segno, error correction M) as a PNG, 8 pixels a module."""
    buf = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buf, kind="png", scale=8, border=4)
    return buf.getvalue()


def certificate_pdf(f: CertificateFacts) -> bytes:
    pdf = Doc(f.issuer, "Certificado de seguridad de la información")
    pdf.ln(6)
    pdf.title_line("CERTIFICADO DE SEGURIDAD DE LA INFORMACIÓN", 18)
    pdf.text_block(
        f"{f.issuer} certifica que la entidad pública nombrada abajo fue evaluada contra "
        f"el catálogo nacional de controles y obtuvo la {LEVEL_TEXT.get(f.level, f.level).lower()}."
    )
    pdf.ln(4)
    pdf.title_line(f.entity_name, 15)
    pdf.field("Certificado N.º", f.id)
    pdf.field("Estado", STATUS_TEXT.get(f.status, f.status.upper()))
    pdf.field("Nivel", LEVEL_TEXT.get(f.level, f.level))
    pdf.field("Entidad", f"{f.entity_name} ({f.entity_id})")
    if f.entity_level:
        pdf.field("Nivel de gobierno", f.entity_level)
    pdf.field("Válido desde", day(f.issued_at))
    pdf.field("Válido hasta", day(f.valid_until))
    pdf.field("Puntaje", f"{f.score:.1f} %")
    catalogue_line = f"versión {f.catalogue_version}"
    if f.catalogue_title:
        catalogue_line = f"{f.catalogue_title}, {catalogue_line}"
    pdf.field("Catálogo", catalogue_line)
    pdf.field("Evaluación N.º", f.assessment_id)
    pdf.section("Alcance")
    pdf.text_block(
        "Los sistemas y servicios de la entidad en sus redes y dominios registrados ante el CERT:"
    )
    pdf.field("Redes", ", ".join(f.networks) or "-")
    pdf.field("Dominios", ", ".join(f.domains) or "-")
    if f.observation:
        pdf.section("En observación")
        pdf.text_block(f.observation)
    if f.status in ("suspended", "revoked") and f.reason:
        pdf.section("Motivo de la " + ("suspensión" if f.status == "suspended" else "revocación"))
        pdf.text_block(f.reason)
    pdf.section("Verificación")
    y = pdf.get_y()
    pdf.image(io.BytesIO(qr_png(f.verify_url)), x=pdf.l_margin, y=y, w=40, h=40)
    pdf.set_xy(pdf.l_margin + 45, y + 4)
    pdf.multi_cell(
        0,
        5,
        plain(
            "Escanee el código o visite la dirección de abajo para comprobar que este "
            "certificado es auténtico y sigue vigente:\n" + f.verify_url
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_y(y + 44)
    return pdf.finish()
