"""Logging in to the console as a browser does: fetch the form (its CSRF cookie
and field), then post the token with the field."""

from __future__ import annotations

import re

import httpx

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF_FIELD.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def console_login(client: httpx.Client, token: str, follow: bool = False) -> httpx.Response:
    form = client.get("/console/login")
    return client.post(
        "/console/login",
        data={"token": token, "csrf": csrf_of(form.text)},
        follow_redirects=follow,
    )
