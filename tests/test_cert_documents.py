"""The certification documents: the certificate PDF (its QR code decoded with
zxing-cpp), the assessment report as PDF and XLSX, the national progress PDF, and
the same access as the JSON routes."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import openpyxl
import pytest
import zxingcpp
from fastapi.testclient import TestClient
from pypdf import PdfReader

from api.app import create_app
from certification.models import CertificateRow
from core.clock import utcnow
from tests.cert_helpers import PDF, controls, fill, review_all, world
from vigia.wiring import Services

PUBLIC = "https://vigia.example.bo"


@pytest.fixture
def client(sqlite_services: Services) -> Iterator[TestClient]:
    yield TestClient(create_app(sqlite_services))


@pytest.fixture
def h(sqlite_services: Services) -> dict[str, dict[str, str]]:
    return world(sqlite_services)


def pdf_text(content: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


def certify(
    client: TestClient, services: Services, h: dict[str, dict[str, str]], **fill_args: Any
) -> tuple[int, dict[str, Any]]:
    a = fill(client, services, h["a"], **fill_args)
    assert client.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"]).status_code == 200
    review_all(client, h["analyst"], a["id"])
    d = client.post(f"/api/v1/assessments/{a['id']}/decision", json={}, headers=h["analyst"])
    assert d.status_code == 200, d.text
    (cert,) = client.get("/api/v1/certificates", headers=h["a"]).json()
    return a["id"], cert


def test_the_certificate_pdf_in_spanish_with_a_qr_code_to_its_verification_page(
    client: TestClient, sqlite_services: Services, h: dict[str, dict[str, str]]
) -> None:
    sqlite_services.settings.public_url = PUBLIC + "/"
    aid, cert = certify(client, sqlite_services, h)
    r = client.get(f"/api/v1/certificates/{cert['id']}.pdf", headers=h["a"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    text = pdf_text(r.content)
    issued = cert["issued_at"][:10].split("-")
    until = cert["valid_until"][:10].split("-")
    for expected in (
        "CERTIFICADO DE SEGURIDAD DE LA INFORMACIÓN",
        "Entidad A (ent-a)",
        "Gobierno central",
        cert["id"],
        "VIGENTE",
        "Certificación plena",
        "versión 2026.1",
        f"Válido desde {issued[2]}/{issued[1]}/{issued[0]}",
        f"Válido hasta {until[2]}/{until[1]}/{until[0]}",
        "10.1.0.0/16",
        f"Evaluación N.º {aid}",
    ):
        assert expected in text, expected
    # The QR code, read from the image in the PDF, leads to the public page.
    (image,) = PdfReader(io.BytesIO(r.content)).pages[0].images
    (code,) = zxingcpp.read_barcodes(image.image)
    url = f"{PUBLIC}/verificar/{cert['id']}"
    assert code.format == zxingcpp.BarcodeFormat.QRCode and code.text == url
    assert url in text
    assert client.get(f"/verificar/{cert['id']}").status_code == 200  # a page that exists

    # Suspended, the document says so, with the reason.
    s = client.post(
        f"/api/v1/certificates/{cert['id']}/suspend",
        json={"reason": "Incidente grave sin atender"},
        headers=h["analyst"],
    )
    assert s.status_code == 200, s.text
    text = pdf_text(client.get(f"/api/v1/certificates/{cert['id']}.pdf", headers=h["a"]).content)
    assert "SUSPENDIDO" in text and "VIGENTE" not in text
    assert "Incidente grave sin atender" in text


def test_a_certificate_past_its_date_reads_vencido(
    client: TestClient, sqlite_services: Services, h: dict[str, dict[str, str]]
) -> None:
    _, cert = certify(client, sqlite_services, h)
    with sqlite_services.db.transaction() as s:
        row = s.get(CertificateRow, cert["id"])
        assert row is not None
        row.valid_until = utcnow() - timedelta(days=1)
    text = pdf_text(client.get(f"/api/v1/certificates/{cert['id']}.pdf", headers=h["a"]).content)
    assert "VENCIDO" in text and "VIGENTE" not in text


def test_without_a_public_url_the_qr_code_uses_the_address_asked(
    client: TestClient, sqlite_services: Services, h: dict[str, dict[str, str]]
) -> None:
    sqlite_services.settings.public_url = ""
    _, cert = certify(client, sqlite_services, h)
    r = client.get(f"/api/v1/certificates/{cert['id']}.pdf", headers=h["analyst"])
    (image,) = PdfReader(io.BytesIO(r.content)).pages[0].images
    (code,) = zxingcpp.read_barcodes(image.image)
    assert code.text == f"http://testserver/verificar/{cert['id']}"


def test_an_entity_reads_only_its_own_documents(
    client: TestClient, sqlite_services: Services, h: dict[str, dict[str, str]]
) -> None:
    aid, cert = certify(client, sqlite_services, h)
    for path in (
        f"/api/v1/certificates/{cert['id']}.pdf",
        f"/api/v1/assessments/{aid}.pdf",
        f"/api/v1/assessments/{aid}.xlsx",
    ):
        assert client.get(path, headers=h["b"]).status_code == 404, path
        assert client.get(path, headers=h["a"]).status_code == 200, path
        assert client.get(path, headers=h["auditor"]).status_code == 200, path
    assert client.get("/api/v1/certificates/VIG-NONE.pdf", headers=h["admin"]).status_code == 404
    assert client.get("/api/v1/assessments/0.pdf", headers=h["admin"]).status_code == 422
    assert client.get("/api/v1/certification/progress.pdf", headers=h["a"]).status_code == 403


def test_the_assessment_report_as_xlsx_one_row_per_control(
    client: TestClient, sqlite_services: Services, h: dict[str, dict[str, str]]
) -> None:
    cat = controls(sqlite_services)
    a = fill(client, sqlite_services, h["a"], {"GOB-03": "not_applicable", "ACC-03": "partial"})
    # A justification that a spreadsheet would run as a formula stays text.
    formula = '=HYPERLINK("http://x.example","clic")'
    put = client.put(
        f"/api/v1/assessments/{a['id']}/answers/GOB-03",
        json={"answer": "not_applicable", "justification": formula},
        headers=h["a"],
    )
    assert put.status_code == 200, put.text
    client.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"])
    review_all(client, h["analyst"], a["id"], reject={"ACC-03": "Falta la evidencia"})
    r = client.get(f"/api/v1/assessments/{a['id']}.xlsx", headers=h["a"])
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    rows = list(wb["Controles"].iter_rows(values_only=True))
    head, body = rows[0], rows[1:]
    assert head[:9] == (
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
    assert [row[0] for row in body] == [c.id for c in cat]
    by_id = {row[0]: row for row in body}
    digest = hashlib.sha256(PDF).hexdigest()
    gob01 = by_id["GOB-01"]
    assert gob01[4] == "Implementado" and gob01[6] == "Aceptado"
    assert gob01[8] == f"{digest} GOB-01.pdf"
    assert by_id["ACC-03"][4] == "Parcial" and by_id["ACC-03"][6] == "Rechazado"
    assert by_id["ACC-03"][7] == "Falta la evidencia" and by_id["ACC-03"][8] is None
    assert by_id["GOB-03"][4] == "No aplica" and by_id["GOB-03"][5] == formula
    cell = wb["Controles"].cell(row=1 + [c.id for c in cat].index("GOB-03") + 1, column=6)
    assert cell.data_type == "s"  # a string, not a formula
    evidence = list(wb["Evidencias"].iter_rows(values_only=True))[1:]
    implemented = [c.id for c in cat if c.id not in ("GOB-03", "ACC-03")]
    assert sorted(e[0] for e in evidence) == sorted(implemented)
    assert {e[4] for e in evidence} == {digest}


def test_the_assessment_report_as_pdf(
    client: TestClient, sqlite_services: Services, h: dict[str, dict[str, str]]
) -> None:
    a = fill(client, sqlite_services, h["a"], {"ACC-03": "partial"})
    client.post(f"/api/v1/assessments/{a['id']}/submit", headers=h["a"])
    review_all(client, h["analyst"], a["id"], reject={"ACC-03": "Falta la evidencia"})
    r = client.get(f"/api/v1/assessments/{a['id']}.pdf", headers=h["analyst"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = pdf_text(r.content)
    flat = re.sub(r"\s+", "", text)
    assert f"Informe de autoevaluación N.º {a['id']}" in text
    assert "Entidad A (ent-a)" in text and "En revisión" in text
    for c in controls(sqlite_services):
        assert c.id in text
    assert "Falta la evidencia" in text and "Rechazado" in text and "Parcial" in text
    assert hashlib.sha256(PDF).hexdigest() in flat


def test_the_national_progress_pdf_draws_its_charts(
    client: TestClient, sqlite_services: Services, h: dict[str, dict[str, str]]
) -> None:
    certify(client, sqlite_services, h)
    r = client.get("/api/v1/certification/progress.pdf", headers=h["auditor"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(r.content))
    text = pdf_text(r.content)
    assert "Informe de avance de la certificación nacional" in text
    assert "1 de 2 (50.0 %)" in text  # ent-a certified, ent-b not started
    assert "Gobierno central" in text and "Gobierno municipal" in text and "1/1" in text
    assert "Sin iniciar" in text and "Faltan" in text
    # The bars are vector rectangles in the pages' drawing, not images: for each
    # level and state a grey track and, when above zero, its filled bar; for each
    # month with a certified share, its column.
    p = client.get("/api/v1/certification/progress", headers=h["auditor"]).json()
    expected = (
        sum(1 + (v["ratio"] > 0) for v in p["by_level"].values())
        + sum(1 + (n > 0) for n in p["by_state"].values())
        + sum(m["ratio"] > 0 for m in p["trend"])
    )
    drawing = "".join(
        page.get_contents().get_data().decode("latin-1")  # type: ignore[union-attr]
        for page in reader.pages
    )
    assert not any(page.images for page in reader.pages)
    assert len(re.findall(r" re f\b", drawing)) == expected >= 2 + 9 + 3 + 1


def test_text_outside_the_pdf_font_is_replaced_not_an_error(
    client: TestClient, sqlite_services: Services, h: dict[str, dict[str, str]]
) -> None:
    a = fill(client, sqlite_services, h["a"], {"GOB-03": "not_applicable"})
    typed = "Sin servidores — “propios”; ver acta Nº 3 🙂 Ñandú"
    put = client.put(
        f"/api/v1/assessments/{a['id']}/answers/GOB-03",
        json={"answer": "not_applicable", "justification": typed},
        headers=h["a"],
    )
    assert put.status_code == 200, put.text
    r = client.get(f"/api/v1/assessments/{a['id']}.pdf", headers=h["a"])
    assert r.status_code == 200
    flat = re.sub(r"\s+", " ", pdf_text(r.content))
    assert 'Sin servidores - "propios"; ver acta Nº 3 ? Ñandú' in flat
    # the workbook keeps the text as typed
    wb = openpyxl.load_workbook(
        io.BytesIO(client.get(f"/api/v1/assessments/{a['id']}.xlsx", headers=h["a"]).content)
    )
    assert typed in [row[5] for row in wb["Controles"].iter_rows(values_only=True)]
