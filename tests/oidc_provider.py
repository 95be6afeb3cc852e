"""A real OpenID Connect provider on loopback for the single sign-on tests.

Built with Authlib's server classes (its Flask `AuthorizationServer`, the
authorization code grant with the OpenID Connect `OpenIDCode` extension and
PKCE's `CodeChallenge`, RFC 9068 JWT access tokens), served by Werkzeug in a
thread on a free port: a discovery document, a JWKS endpoint, a login form at
the authorization endpoint, a token endpoint and an end-session endpoint
(OpenID Connect RP-Initiated Logout). A successful login opens a session at the
provider (a cookie): while it lasts, the authorization endpoint sends the person
back at once without asking for credentials, as real providers do; the
end-session endpoint ends it (`offers_logout = False`: the discovery document
names no such endpoint). Users, clients, sessions and keys live in memory.
`rotate()` replaces the signing key (the old one leaves the JWKS: a revoked
key); `lifetime_s` sets the lifetime of the tokens it issues (negative: already
expired); `forge_nonce` makes its ID tokens carry another nonce;
`userinfo_only` names claims (e.g. `groups`) left out of its ID and access
tokens and given only by its userinfo endpoint (Authlib's resource protector
with the RFC 9068 validator: a valid access token of its own is needed), as
many providers do with groups.

`token_for(user)` runs the whole code flow over HTTP as a command-line client
would (Authlib's client: PKCE, the login form, the code for tokens), so the API
tests hold the provider's real tokens.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from html import escape
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator, JWTBearerTokenValidator
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, Response, jsonify, redirect, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.centre import free_port

PASSWORD = "correcta-horse-9"  # every test user's password at the provider
SESSION_COOKIE = "idp_sesion"  # the provider's own session, on its own address


@dataclass
class User:
    sub: str
    username: str
    groups: list[str]
    entity: str | None = None

    def get_user_id(self) -> str:
        return self.sub


@dataclass
class Client(ClientMixin):
    client_id: str
    secret: str | None
    redirect_uris: list[str] = field(default_factory=list)
    logout_uris: list[str] = field(default_factory=list)  # post_logout_redirect_uri

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in ("openid", "profile", "email"))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and secrets.compare_digest(self.secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == ("client_secret_basic" if self.secret else "none")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class Provider:
    def __init__(self, users: list[User], redirect_uris: list[str] | None = None) -> None:
        self.users = {u.username: u for u in users}
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.secret = secrets.token_urlsafe(32)  # Vigía's client secret (43 characters)
        self.clients = {
            "vigia": Client("vigia", self.secret, list(redirect_uris or [])),
            # another application of the same provider: its tokens are not for Vigía
            "otra-app": Client("otra-app", None, ["http://127.0.0.1/cli"]),
        }
        self.clients["vigia"].redirect_uris.append("http://127.0.0.1/cli")
        # Vigía's login page, where the provider's logout sends the person back.
        self.clients["vigia"].logout_uris = [
            u.removesuffix("/console/sso/retorno") + "/console/login" for u in redirect_uris or []
        ]
        self.offers_logout = True
        self.sessions: dict[str, str] = {}  # the provider's own session cookie → username
        self.logouts: list[str] = []  # who was logged out at the end-session endpoint
        self.asked_credentials = 0  # logins that showed the form (not a running session)
        self.userinfo_only: set[str] = set()  # claims given by the userinfo endpoint alone
        self.userinfo_calls = 0
        self.offers_userinfo = True  # False: its discovery document names no userinfo endpoint
        self.forge_userinfo_sub: str | None = None  # set: userinfo answers about this subject
        self.published = 0  # requests for its discovery document or its keys
        self.lifetime_s = 600
        self.forge_nonce: str | None = None  # set: ID tokens carry this nonce instead
        self.codes: dict[str, Code] = {}
        self.challenges: list[str | None] = []  # the code_challenge_method of each login
        self._key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self._kid_no = 1
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.app = self._build()

    # -- keys ------------------------------------------------------------------

    def signing_keys(self) -> KeySet:
        return KeySet([self._key])

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    def rotate(self) -> str:
        """A new signing key; the old one is no longer published (revoked)."""
        self._kid_no += 1
        kid = f"k{self._kid_no}"
        self._key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})
        return kid

    # -- the Flask application ----------------------------------------------------

    def _build(self) -> Flask:
        app = Flask("vigia-test-idp")
        provider = self

        def query_client(client_id: str) -> Client | None:
            return provider.clients.get(client_id)

        server = AuthorizationServer(app, query_client=query_client, save_token=lambda t, r: None)

        class AccessTokens(JWTBearerTokenGenerator):
            def get_jwks(self) -> KeySet:
                return provider.signing_keys()

            def get_extra_claims(
                self, client: Client, grant_type: str, user: User, scope: str
            ) -> dict[str, Any]:
                return provider.token_claims(user)

        server.register_token_generator(
            "default",
            AccessTokens(provider.issuer, expires_generator=lambda c, g: provider.lifetime_s),
        )

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "none"]

            def save_authorization_code(self, code: str, req: Any) -> None:
                data = req.payload.data
                provider.challenges.append(data.get("code_challenge_method"))
                provider.codes[code] = Code(
                    code,
                    req.client.client_id,
                    req.payload.redirect_uri,
                    req.payload.scope,
                    req.user,
                    provider.forge_nonce or data.get("nonce"),
                    data.get("code_challenge"),
                    data.get("code_challenge_method"),
                    int(time.time()),
                )

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                found = provider.codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: Code) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> User:
                return authorization_code.user

        class IdTokens(OpenIDCode):
            def exists_nonce(self, nonce: str, req: Any) -> bool:
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider._key

            def get_encode_header(self, client: Client) -> dict[str, str]:
                return {"alg": "RS256", "kid": str(provider._key.kid)}

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                exp = int(time.time()) + provider.lifetime_s
                return {"iss": provider.issuer, "aud": [client.client_id], "exp": exp}

            def generate_user_info(self, user: User, scope: str) -> UserInfo:
                return UserInfo(provider.token_claims(user))

        server.register_grant(CodeGrant, [IdTokens(require_nonce=True), CodeChallenge()])

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Response:
            provider.published += 1
            more = {}
            if provider.offers_logout:
                more["end_session_endpoint"] = f"{provider.issuer}/logout"
            if provider.offers_userinfo:
                more["userinfo_endpoint"] = f"{provider.issuer}/userinfo"
            return jsonify(
                **more,
                issuer=provider.issuer,
                authorization_endpoint=f"{provider.issuer}/authorize",
                token_endpoint=f"{provider.issuer}/token",
                jwks_uri=f"{provider.issuer}/jwks",
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                code_challenge_methods_supported=["S256"],
                token_endpoint_auth_methods_supported=["client_secret_basic", "none"],
            )

        @app.get("/jwks")
        def jwks() -> Response:
            provider.published += 1
            return jsonify(provider.jwks())

        class AccessTokenCheck(JWTBearerTokenValidator):
            def get_jwks(self) -> KeySet:
                return provider.signing_keys()

        bearer_only = ResourceProtector()
        bearer_only.register_token_validator(AccessTokenCheck(provider.issuer, "vigia"))

        @app.get("/userinfo")
        def userinfo() -> Response:
            with bearer_only.acquire(["openid"]) as token:  # 401 without a valid one
                provider.userinfo_calls += 1
                user = next(u for u in provider.users.values() if u.sub == token["sub"])
                answer = provider.user_claims(user)
                if provider.forge_userinfo_sub:
                    answer["sub"] = provider.forge_userinfo_sub
                return jsonify(answer)

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize() -> Any:
            if not request.args.get("code_challenge"):  # PKCE or nothing
                return Response("code_challenge required", status=400)
            if request.method == "GET":
                known = provider.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
                if known is not None:  # a session here: no credentials asked again
                    return server.create_authorization_response(grant_user=provider.users[known])
                provider.asked_credentials += 1
                return Response(_LOGIN_FORM.format(query=escape(request.query_string.decode())))
            user = provider.users.get(request.form.get("username", ""))
            if user is None or request.form.get("password") != PASSWORD:
                return Response("bad credentials", status=401)
            answer = server.create_authorization_response(grant_user=user)
            sid = secrets.token_urlsafe(16)
            provider.sessions[sid] = user.username
            answer.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Lax")
            return answer

        @app.get("/logout")
        def end_session() -> Any:
            """RP-Initiated Logout 1.0: the ID token names who and for which client; the
            address to go back to must be one the client registered."""
            if not provider.offers_logout:
                return Response("not found", status=404)
            try:
                hint = jwt.decode(request.args.get("id_token_hint", ""), provider.signing_keys())
            except (JoseError, ValueError):
                return Response("bad id_token_hint", status=400)
            aud = hint.claims.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
            client = provider.clients.get(request.args.get("client_id", ""))
            back = request.args.get("post_logout_redirect_uri", "")
            if hint.claims.get("iss") != provider.issuer or client is None:
                return Response("bad id_token_hint", status=400)
            if client.client_id not in audiences or back not in client.logout_uris:
                return Response("post_logout_redirect_uri not registered", status=400)
            user = next(u for u in provider.users.values() if u.sub == hint.claims.get("sub"))
            for sid in [k for k, v in provider.sessions.items() if v == user.username]:
                del provider.sessions[sid]
            provider.logouts.append(user.username)
            answer = redirect(back, code=302)
            answer.delete_cookie(SESSION_COOKIE)
            return answer

        @app.post("/token")
        def token() -> Any:
            return server.create_token_response()

        return app

    def user_claims(self, user: User) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "sub": user.sub,
            "preferred_username": user.username,
            "groups": list(user.groups),
        }
        if user.entity:
            claims["entidad"] = user.entity
        return claims

    def token_claims(self, user: User) -> dict[str, Any]:
        """What its ID and access tokens carry: all but the userinfo-only claims."""
        return {k: v for k, v in self.user_claims(user).items() if k not in self.userinfo_only}

    # -- running -----------------------------------------------------------------

    def start(self) -> Provider:
        self._server = make_server(
            "127.0.0.1", self.port, self.app, threaded=True, request_handler=_Quiet
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- a command-line client's code flow -----------------------------------------

    def token_for(self, username: str, client_id: str = "vigia") -> dict[str, Any]:
        """The user's tokens through the authorization code flow with PKCE, over HTTP."""
        client = self.clients[client_id]
        redirect_uri = "http://127.0.0.1/cli"
        with OAuth2Client(
            client_id=client_id,
            client_secret=client.secret,
            token_endpoint_auth_method="client_secret_basic" if client.secret else "none",
            scope="openid profile",
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        ) as oauth:
            verifier = secrets.token_urlsafe(48)
            url, state = oauth.create_authorization_url(
                f"{self.issuer}/authorize", code_verifier=verifier, nonce=secrets.token_hex(8)
            )
            form = httpx.get(url)
            form.raise_for_status()
            action = re.search(r'action="([^"]+)"', form.text)
            assert action is not None
            login = httpx.post(
                self.issuer + action.group(1).replace("&amp;", "&"),
                data={"username": username, "password": PASSWORD},
            )
            assert login.status_code == 302, login.text
            back = parse_qs(urlsplit(login.headers["location"]).query)
            assert back["state"] == [state]
            return dict(
                oauth.fetch_token(
                    f"{self.issuer}/token", code=back["code"][0], code_verifier=verifier
                )
            )


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


_LOGIN_FORM = """<!doctype html>
<html lang="es"><head><meta charset="utf-8"><title>Proveedor de identidad</title></head>
<body><h1>Proveedor de identidad del Estado</h1>
<form method="post" action="/authorize?{query}">
<label for="username">Usuario</label> <input id="username" name="username">
<label for="password">Contraseña</label> <input id="password" name="password" type="password">
<button type="submit" id="entrar">Entrar</button>
</form></body></html>"""
