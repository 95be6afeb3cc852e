"""Messages for people, Spanish first, English second: gettext catalogues.

The catalogues are `core/locale/<lang>/LC_MESSAGES/vigia.po` (package data),
shared by the console, the API's refusals and the mails the services send. Each
message id is a stable dotted key ("nav.alerts", "incident.not_found",
"rsit.malicious-code/c2-server"); the Spanish and the English catalogue each give
its text, with `{name}` fields for parameters. They are read with Babel and
compiled in memory when a process first asks for a language, so an editable
install and a wheel behave alike and no compiled .mo file is kept in git.

Checked in CI (tests/test_i18n.py): every id the code and the templates use is in
both catalogues with a non-empty text, and no console page shows an id.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

if TYPE_CHECKING:  # jinja2 is the centre's (mails); the appliance's CLI reads help texts only
    import jinja2

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "vigia"
LANGS = ("es", "en")
DEFAULT = "es"
RECORD = "es"  # what the services write into records (titles, decision reasons) is Spanish


def N_(key: str) -> str:
    """Marks a message id for extraction where it is only passed on (gettext_noop)."""
    return key


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> gettext.GNUTranslations:
    """The language's catalogue as standard gettext translations (unknown → Spanish)."""
    lang = lang if lang in LANGS else DEFAULT
    with po_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    buf = BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    found = gettext.GNUTranslations(buf)
    if lang != DEFAULT:
        found.add_fallback(translations(DEFAULT))  # a gap in English shows Spanish, not an id
    return found


def text(lang: str, key: str, params: Mapping[str, object] | None = None) -> str:
    """The message in this language, its `{name}` fields filled; the id itself when
    no catalogue has it (which tests/test_i18n.py looks for on every page)."""
    found = translations(lang).gettext(key)
    if not params:
        return found
    try:
        return found.format(**params)
    except (KeyError, IndexError, ValueError):
        return found  # a translation naming a field the code does not give


def translator(lang: str) -> Callable[..., str]:
    """`t(key, **params)`, as the console templates call it."""

    def t(key: str, **params: object) -> str:
        return text(lang, key, params)

    return t


def pick(requested: str | None, accept_language: str = "", default: str = DEFAULT) -> str:
    """The language to answer in: one asked for by name (`?lang=`, a cookie), else the
    first of Accept-Language we have (by q-value), else `default`."""
    if requested in LANGS:
        return requested
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.replace(" ", "").split(",")):
        tag, _, q = part.partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        ranked.append((-weight, i, tag.split("-")[0].strip().lower()))
    for _, _, lang in sorted(ranked):
        if lang in LANGS:
            return lang
    return default


@dataclass(frozen=True)
class Mail:
    subject: str
    body: str


@cache
def _mail_env(folder: str) -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=False,  # plain-text mail, not HTML
        undefined=jinja2.StrictUndefined,  # a field the caller forgot fails, not blanks
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_mail(folder: Path, name: str, lang: str, **context: object) -> Mail:
    """A mail written as a jinja2 template per language (`<name>.<lang>.txt`: the
    subject on the first line, a blank line, the body), with `t` for catalogue texts
    (taxonomy labels, states). An unknown language gets the Spanish one."""
    lang = lang if lang in LANGS else DEFAULT
    template = _mail_env(str(folder)).get_template(f"{name}.{lang}.txt")
    subject, _, body = template.render(t=translator(lang), **context).partition("\n\n")
    return Mail(" ".join(subject.split()), body.strip("\n") + "\n")
