"""Single sign-on: the OpenID Connect providers as Vigía sees them.

One `Provider` per configured provider, all held by `Providers`
(`app.state.oidc`, None without SSO). Each reads its provider's discovery
document and signing keys (JWKS), keeps both for `VIGIA_OIDC_JWKS_MAX_AGE_S`,
and fetches the keys again at once when a token names a key id it does not hold
(a rotation), at most once every `REFRESH_GAP_S`, so tokens with made-up key ids
cannot make Vigía hammer the provider. A key the provider no longer publishes is
forgotten at that fetch: a token signed with a revoked or rotated-out key is
refused.

Every JWT is checked here: signature against the provider's keys with an
asymmetric algorithm (never `none` nor a shared-secret one), issuer, audience,
expiry (and, for the console's ID token, nonce, through Authlib's
`CodeIDToken`). What the identity may do is `api.oidc_claims`' job.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from joserfc.jwt import JWTClaimsRegistry

from core.settings import Settings
from core.sso_config import OidcProvider

# Asymmetric signatures only: a shared-secret algorithm would let anyone holding
# the client secret mint tokens, and `none` signs nothing.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LEEWAY_S = 30  # clock skew allowed on exp / iat / nbf
REFRESH_GAP_S = 10.0  # an unknown key id fetches the keys at most this often
HTTP_TIMEOUT_S = 5.0


class TokenRefused(Exception):
    """A JWT that is not valid (expired, another audience, an unknown key...)."""


class ProviderDown(Exception):
    """The provider's discovery document or keys could not be had."""


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts, a JSON header first: not one of Vigía's own tokens."""
    return token.startswith("eyJ") and token.count(".") == 2


class Provider:
    def __init__(
        self,
        config: OidcProvider,
        roles_setting: str,
        max_age_s: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config  # its claim mapping (api.oidc_claims)
        self.roles_setting = roles_setting  # where its roles are set, for a refusal's reason
        self.issuer = config.issuer.rstrip("/")
        self.client_id = config.client_id
        self._secret = config.client_secret.get_secret_value()
        self.audience = config.audience or config.client_id
        self.name = config.name
        self.scopes = config.scopes
        self._max_age = float(max_age_s)
        self._transport = transport
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._forced_at = -REFRESH_GAP_S

    # -- what the provider publishes --------------------------------------------

    def _get(self, url: str) -> dict[str, Any]:
        try:
            with httpx.Client(timeout=HTTP_TIMEOUT_S, transport=self._transport) as http:
                resp = http.get(url, headers={"Accept": "application/json"})
                resp.raise_for_status()
                data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderDown(f"{url}: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise ProviderDown(f"{url}: not a JSON object")
        return data

    def metadata(self) -> dict[str, Any]:
        """The discovery document; its issuer must be the configured one."""
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata_at < self._max_age:
                return self._metadata
        found = self._get(f"{self.issuer}/.well-known/openid-configuration")
        if str(found.get("issuer", "")).rstrip("/") != self.issuer:
            raise ProviderDown("the discovery document names another issuer")
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(found.get(field), str):
                raise ProviderDown(f"the discovery document has no {field}")
        with self._lock:
            self._metadata, self._metadata_at = found, time.monotonic()
        return found

    def _key_set(self, kid: str | None) -> KeySet:
        """The provider's keys, fetched again when stale or when `kid` is new to us."""
        now = time.monotonic()
        with self._lock:
            held, fresh = self._keys, now - self._keys_at < self._max_age
            known = held is not None and any(k.kid == kid for k in held.keys)
            may_force = now - self._forced_at >= REFRESH_GAP_S
            if held is not None and fresh and (known or kid is None or not may_force):
                return held
            if held is not None and fresh:
                self._forced_at = now  # an unknown key id: the provider may have rotated
        data = self._get(self.metadata()["jwks_uri"])
        try:
            keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ProviderDown(f"the provider's JWKS does not read: {exc}") from None
        with self._lock:
            self._keys, self._keys_at = keys, time.monotonic()
        return keys

    # -- checking tokens -----------------------------------------------------

    def _decode(self, token: str) -> jwt.Token:
        try:
            header = jws.extract_compact(token.encode()).headers()  # unverified: only its kid
        except (JoseError, ValueError) as exc:
            raise TokenRefused(f"not a readable JWT ({exc})") from None
        kid = header.get("kid")
        keys = self._key_set(kid if isinstance(kid, str) else None)
        registry = JWSRegistry(algorithms=list(ALGORITHMS))
        try:
            return jwt.decode(token, keys, algorithms=list(ALGORITHMS), registry=registry)
        except InvalidKeyIdError:
            raise TokenRefused("signed with a key the provider does not publish") from None
        except BadSignatureError:
            raise TokenRefused("bad signature") from None
        except (JoseError, ValueError) as exc:
            raise TokenRefused(f"refused ({exc.__class__.__name__})") from None

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """An API bearer JWT's claims, once signature, issuer, audience and expiry hold."""
        claims = self._decode(token).claims
        registry = JWTClaimsRegistry(
            leeway=LEEWAY_S,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        _validate(lambda: registry.validate(claims))
        return claims

    def verify_id_token(self, id_token: str, access_token: str, nonce: str) -> dict[str, Any]:
        """The console's ID token (OpenID Connect Core 3.1.3.7), nonce included."""
        token = self._decode(id_token)
        claims = CodeIDToken(
            token.claims,
            token.header,
            {"iss": {"essential": True, "values": [self.issuer]}},
            {"nonce": nonce, "client_id": self.client_id, "access_token": access_token},
        )
        _validate(lambda: claims.validate(leeway=LEEWAY_S))
        return dict(claims)

    # -- the console's authorisation code flow (with PKCE) ----------------------

    def _client(self, redirect_uri: str) -> Any:
        # Imported here: only a console login needs it (and Authlib warns on import
        # that it would rather have httpx2, which Vigía does not use).
        from authlib.integrations.httpx_client import OAuth2Client

        return OAuth2Client(
            client_id=self.client_id,
            client_secret=self._secret or None,
            token_endpoint_auth_method="client_secret_basic" if self._secret else "none",
            scope=self.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT_S,
            transport=self._transport,
        )

    def authorization_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        endpoint = self.metadata()["authorization_endpoint"]
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                endpoint, state=state, nonce=nonce, code_verifier=verifier
            )
        return str(url)

    def exchange(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """The code for tokens at the token endpoint (PKCE: the verifier goes along)."""
        endpoint = self.metadata()["token_endpoint"]
        try:
            with self._client(redirect_uri) as client:
                token = client.fetch_token(endpoint, code=code, code_verifier=verifier)
        except httpx.HTTPError as exc:
            raise ProviderDown(f"token endpoint: {type(exc).__name__}") from None
        except Exception as exc:  # Authlib's OAuthError and kin: the provider said no
            raise TokenRefused(f"the provider refused the code ({exc})") from None
        if not isinstance(token, dict) or "id_token" not in token:
            raise TokenRefused("the provider gave no ID token")
        return dict(token)

    def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The person's claims from the provider's userinfo endpoint (OpenID Connect
        Core 5.3), asked once at login with the access token just received. Its `sub`
        must be the ID token's, or none of it is used (Core 5.3.4). A provider without
        that endpoint (or no access token to ask it with): nothing more."""
        endpoint = self.metadata().get("userinfo_endpoint")
        if not isinstance(endpoint, str) or not access_token:
            return {}
        try:
            with httpx.Client(timeout=HTTP_TIMEOUT_S, transport=self._transport) as http:
                resp = http.get(
                    endpoint,
                    headers={
                        "Authorization": f"Bearer {access_token}",
                        "Accept": "application/json",
                    },
                )
        except httpx.HTTPError as exc:
            raise ProviderDown(f"userinfo endpoint: {type(exc).__name__}") from None
        if resp.status_code in (401, 403):
            raise TokenRefused("the userinfo endpoint refused the access token")
        if resp.status_code >= 400:
            raise ProviderDown(f"userinfo endpoint: HTTP {resp.status_code}")
        try:
            found = resp.json()
        except ValueError:
            raise TokenRefused("the userinfo answer is not JSON") from None
        if not isinstance(found, dict) or found.get("sub") != subject:
            raise TokenRefused("the userinfo answer is about another subject")
        return found

    # -- the console's logout at the provider ------------------------------------

    def end_session_url(self, id_token: str, after: str) -> str | None:
        """Where to send the browser to end the person's session at the provider
        (OpenID Connect RP-Initiated Logout 1.0), then back to `after`; None when the
        discovery document names no `end_session_endpoint`."""
        endpoint = self.metadata().get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        # Only as safe a scheme as the issuer's own (https, or http on loopback).
        if urlsplit(endpoint).scheme not in ("https", urlsplit(self.issuer).scheme):
            return None
        query = urlencode(
            {
                "id_token_hint": id_token,
                "post_logout_redirect_uri": after,
                "client_id": self.client_id,
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


class Providers:
    """The configured providers: in the login page's order, and by issuer for a JWT.

    A bearer JWT is checked by the provider its (unverified) `iss` names, with that
    provider's own keys and audience; a JWT from an issuer not configured is refused
    before anything is fetched: Vigía never asks an unknown issuer for keys."""

    def __init__(self, providers: list[Provider]) -> None:
        self.all = providers
        self._by_issuer = {p.issuer: p for p in providers}

    @classmethod
    def from_settings(cls, settings: Settings) -> Providers | None:
        max_age = settings.oidc_jwks_max_age_s
        found = [Provider(c, where, max_age) for c, where in settings.sso_providers()]
        return cls(found) if found else None

    def __iter__(self) -> Iterator[Provider]:
        return iter(self.all)

    def at(self, index: int) -> Provider | None:
        return self.all[index] if 0 <= index < len(self.all) else None

    def by_issuer(self, issuer: str) -> Provider | None:
        return self._by_issuer.get(issuer.rstrip("/"))

    def for_jwt(self, token: str) -> Provider:
        """The provider a JWT says it is from; TokenRefused for any other issuer."""
        try:
            claims = json.loads(jws.extract_compact(token.encode()).payload)
        except (JoseError, ValueError) as exc:
            raise TokenRefused(f"not a readable JWT ({exc.__class__.__name__})") from None
        issuer = claims.get("iss") if isinstance(claims, dict) else None
        found = self.by_issuer(issuer) if isinstance(issuer, str) else None
        if found is None:
            raise TokenRefused("not from a configured issuer")
        return found


def _validate(check: Any) -> None:
    try:
        check()
    except ExpiredTokenError:
        raise TokenRefused("expired") from None
    except InvalidClaimError as exc:
        raise TokenRefused(f"wrong {exc.claim}") from None
    except MissingClaimError as exc:
        raise TokenRefused(f"no {exc.claim}") from None
    except JoseError as exc:
        raise TokenRefused(f"refused ({exc.__class__.__name__})") from None
