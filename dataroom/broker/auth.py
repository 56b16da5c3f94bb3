"""Who is calling: the caller's JupyterHub token checked with the Hub on every request.

``HubAuth`` (JupyterHub's own service-auth helper) asks the Hub's ``/hub/api/user`` with the
token; the reply names the user, their groups and the token's scopes. The broker then requires
``access:services!service=<name>`` among those scopes (a user's server token gets it through
``Spawner.server_token_scopes``), so a token that identifies a user but was not granted access
to the broker (another service's token, a narrowly scoped personal token) is refused.

HubAuth caches the Hub's reply per token for :data:`AUTH_CACHE_S` seconds: the scopes are checked
on every request against that reply, and a revoked token stops working within that time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tornado.web import HTTPError, RequestHandler

from dataroom.policy import Reason

AUTH_CACHE_S = 60


@dataclass(frozen=True)
class Caller:
    """An authenticated Hub user, as the Hub described them for this token."""

    name: str
    groups: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)


class Refused(Exception):
    """The request is refused before the pipeline: HTTP status, audit outcome and the reason."""

    def __init__(self, status: int, outcome: str, reason: Reason, user: str | None = None, groups: list[str] | None = None) -> None:
        super().__init__(reason.message)
        self.status = status
        self.outcome = outcome
        self.reason = reason
        self.user = user
        self.groups = groups or []


class BrokerAuth:
    """Authenticate a tornado request with the Hub and check the broker's access scope."""

    def __init__(self, service_name: str, hub_auth=None) -> None:
        if hub_auth is None:
            from jupyterhub.services.auth import HubAuth

            # api_url and api_token come from JUPYTERHUB_API_URL / JUPYTERHUB_API_TOKEN, which
            # the Hub sets for a managed service.
            hub_auth = HubAuth(cache_max_age=AUTH_CACHE_S, allow_token_in_url=False)  # header only
        self.hub_auth = hub_auth
        self.service_name = service_name
        self.required_scopes = {f"access:services!service={service_name}"}

    def token(self, handler: RequestHandler) -> str | None:
        """The token the request carries (``Authorization`` header only), if any."""
        return self.hub_auth.get_token(handler, in_cookie=False)

    async def authenticate(self, handler: RequestHandler) -> Caller:
        """The caller, or :class:`Refused` (401 no/bad token, 403 wrong scope, 503 Hub down)."""
        token = self.token(handler)
        if not token:
            raise Refused(
                401,
                "denied",
                Reason(
                    "missing_token",
                    "no JupyterHub token: send 'Authorization: token <JUPYTERHUB_API_TOKEN>' "
                    "(dataroom.connect() does this inside a hub-spawned notebook server)",
                ),
            )
        try:
            model = await self.hub_auth.user_for_token(token, sync=False)
        except HTTPError as exc:
            raise Refused(503, "error", Reason("hub_unavailable", f"could not check the token with JupyterHub: {exc.log_message or exc}")) from exc
        if not model:
            raise Refused(
                401,
                "denied",
                Reason("invalid_token", "JupyterHub does not accept this token (wrong, expired or revoked): use your server's JUPYTERHUB_API_TOKEN"),
            )
        name = model.get("name")
        groups = list(model.get("groups") or [])
        if model.get("kind", "user") != "user" or not name:
            raise Refused(403, "denied", Reason("not_a_user", "only JupyterHub users can query the data room, not services"), user=name, groups=groups)
        if not self.hub_auth.check_scopes(self.required_scopes, model):
            raise Refused(
                403,
                "denied",
                Reason(
                    "missing_scope",
                    f"this token of user {name} lacks the scope access:services!service={self.service_name}: "
                    "use the JUPYTERHUB_API_TOKEN of your notebook server, or a token granted that scope",
                ),
                user=name,
                groups=groups,
            )
        return Caller(name=name, groups=groups, scopes=list(model.get("scopes") or []))
