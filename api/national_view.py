"""The national certification dashboard's figures as the console shows them: the
progress (certification.progress_cache) planned for the day the reader chose
(`?fecha=YYYY-MM-DD`, kept in the URL; by default the end of next year), with the
level and department names in the reader's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from certification import progress_cache
from certification.registry import LEVELS
from core.i18n import translator


@dataclass(frozen=True)
class NationalView:
    figures: dict[str, Any]
    fecha: str
    error: str | None
    status: int


def language(request: Request) -> str:
    """The page's language as `api.console_deps.page` picks it."""
    lang = request.query_params.get("lang") or request.cookies.get("vigia_lang") or "es"
    return lang if lang in ("es", "en") else "es"


def build(session: Session, now: datetime, fecha: str, lang: str) -> NationalView:
    t = translator(lang)
    default = date(now.year + 1, 12, 31)
    error = None
    try:
        by = date.fromisoformat(fecha) if fecha else default
    except ValueError:
        by, error = default, t("nv.bad_date", value=fecha)
    p = progress_cache.figures(session, now, by=by)
    p["level_names"] = {lv: t(f"level.{lv}") for lv in LEVELS}
    p["department_names"] = {
        k: v["name"] or t("nv.national_bodies") for k, v in p["by_department"].items()
    }
    p["labels"] = {k: t(f"nv.{k}") for k in ("certified_pct", "goal", "at_current", "at_needed")}
    return NationalView(p, by.isoformat(), error, 422 if error else 200)
