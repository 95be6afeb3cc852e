"""The console's logout of a session opened through single sign-on, at the provider
too (RP-initiated logout). Apart from the router so that the console's own logout
route reaches it without a router importing a router."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from api.console_deps import page
from api.oidc import ProviderDown
from api.oidc_auth import providers_of
from api.services import Services

CALLBACK = "/console/sso/retorno"
LOGIN = "/console/login"


def callback_url(request: Request, public_url: str) -> str:
    base = public_url.rstrip("/") if public_url else str(request.base_url).rstrip("/")
    return base + CALLBACK


def logout_at_provider(request: Request, services: Services, sso: tuple[str, str]) -> Response:
    """The answer to the console's logout of a session opened through single sign-on
    (the local session already ended): a page of ours that moves the browser on to the
    provider's end-session endpoint, which ends the person's session there and sends
    them back to the login page. A page, not a redirect: the logout is a form, and the
    console's `form-action 'self'` would stop a form's redirect to another site. A
    provider without that endpoint (or another provider than the session's): straight
    to the login page; a provider that does not answer: the login page saying so."""
    providers = providers_of(request)
    provider = providers.by_issuer(sso[0]) if providers is not None else None
    if provider is None:  # no longer configured: Vigía's logout alone
        return RedirectResponse(LOGIN, status_code=303)
    after = callback_url(request, services.settings.public_url).removesuffix(CALLBACK) + LOGIN
    try:
        url = provider.end_session_url(sso[1], after)
    except ProviderDown:
        return page(
            request, "login.html", error="sso.logout_down", error_params={"provider": provider.name}
        )
    if url is None:
        return RedirectResponse(LOGIN, status_code=303)
    return page(request, "sso_logout.html", url=url, provider=provider.name)
