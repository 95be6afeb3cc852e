"""The national progress report as a PDF: the figures of `progress.progress` with
its charts drawn as vector bars in the PDF itself (no image, no browser): by
government level against the target, by state, the last twelve months, and the
entities closest to certification."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from certification.docpdf import Doc
from core.i18n import RECORD, text


def _pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def progress_pdf(p: dict[str, Any], now: datetime, issuer: str) -> bytes:
    """`p` is what `certification.progress.progress` returns."""
    target = float(p["target"])
    pdf = Doc(issuer, "Informe nacional de certificación")
    pdf.title_line("Informe de avance de la certificación nacional")
    pdf.field("Fecha", now.strftime("%d/%m/%Y %H:%M UTC"))
    pdf.field("Entidades certificadas", f"{p['certified']} de {p['total']} ({_pct(p['ratio'])})")
    pdf.field("Meta", f"{_pct(target)} de las entidades activas")
    pdf.field("Faltan", f"{p['needed']} entidades para la meta")
    f = p["forecast"]
    if f.get("reached"):
        forecast = "meta alcanzada"
    elif f.get("month"):
        forecast = f"{f['month']} al ritmo actual ({f['pace_per_month']} por mes)"
    else:
        forecast = f"sin fecha: el ritmo de los últimos meses es {f['pace_per_month']} por mes"
    pdf.field("Pronóstico", forecast)

    pdf.section("Por nivel de gobierno (línea roja: la meta)")
    pdf.bars(
        [
            (text(RECORD, f"level.{level}"), v["ratio"], f"{v['certified']}/{v['total']}")
            for level, v in p["by_level"].items()
        ],
        target=target,
    )
    pdf.section("Por estado")
    total = max(int(p["total"]), 1)
    pdf.bars(
        [
            (text(RECORD, f"cert.state.{state}"), n / total, str(n))
            for state, n in p["by_state"].items()
        ]
    )
    pdf.section("Últimos doce meses: proporción certificada")
    pdf.columns([(m["month"], m["ratio"]) for m in p["trend"]], target=target)
    pdf.grid(
        ("Mes", "Certificadas", "Registradas", "Proporción"),
        [(m["month"], m["certified"], m["total"], _pct(m["ratio"])) for m in p["trend"]],
        (40, 40, 40, 40),
    )
    if p["closest"]:
        pdf.section("Las más cercanas a la certificación")
        pdf.grid(
            ("Entidad", "Nombre", "Estado", "Puntaje", "Avance"),
            [
                (
                    c["id"],
                    c["name"],
                    text(RECORD, f"cert.state.{c['state']}"),
                    "-" if c["score"] is None else f"{c['score']:.1f} %",
                    f"{c['progress'] * 100:.0f} %",
                )
                for c in p["closest"]
            ],
            (35, 70, 35, 20, 20),
        )
    return pdf.finish()
