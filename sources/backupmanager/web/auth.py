"""Who may use the dashboard (YUNOHOST.md §5): SSOwat's identity, the admins group, CSRF, dev mode."""

from __future__ import annotations

import base64
import binascii
import getpass
import grp
import hmac
import logging
import pwd
import secrets
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, abort, g, render_template, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException

from backupmanager.settings import Settings

logger = logging.getLogger(__name__)
SECRET_FILE_NAME = "web-secret"  # noqa: S105 (a file name, not a secret)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Identity:
    username: str
    dev_mode: bool = False


class Refused(Exception):
    """No admin behind this request; the message is for the log, the reason for the page."""

    def __init__(self, reason: str, username: str = "") -> None:
        super().__init__(f"{reason} (user {username or 'unknown'})")
        self.reason = reason
        self.username = username


def basic_username(header: str) -> str:
    """The user name of an `Authorization: Basic` header, "" if there is none (password ignored)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0].strip()


def is_member(username: str, group_name: str) -> bool:
    """Membership as the system sees it (LDAP through nslcd on YunoHost): works as any user."""
    try:
        group = grp.getgrnam(group_name)
    except KeyError:
        return False
    if username in group.gr_mem:
        return True
    try:
        return pwd.getpwnam(username).pw_gid == group.gr_gid
    except KeyError:
        return False


def identify(headers: dict[str, str], settings: Settings) -> Identity:
    """The admin behind a request forwarded by SSOwat and our nginx, or Refused.

    SSOwat overwrites `Authorization` with the logged-in user and clears client `YNH_*` headers;
    our nginx passes `YNH_USER` on as `X-Ynh-User`. Both must be there and agree, so that one
    forged header is never enough, and the user must be in the admins group.
    """
    from_basic = basic_username(headers.get("Authorization", ""))
    from_header = headers.get("X-Ynh-User", "").strip()
    if not from_basic and not from_header:
        raise Refused("no_identity")
    if not from_basic or not from_header or from_basic != from_header:
        raise Refused("identity_mismatch", from_header or from_basic)
    if not is_member(from_basic, settings.admins_group):
        raise Refused("not_admin", from_basic)
    return Identity(from_basic)


def require_admin() -> Response | None:
    """before_request of every dashboard blueprint (never of the API, which uses tokens)."""
    if g.get("dev_mode"):
        g.identity = Identity(getpass.getuser(), dev_mode=True)
    else:
        settings = g.web_settings
        try:
            g.identity = identify(dict(request.headers), settings)
        except Refused as refused:
            logger.warning("dashboard access refused: %s", refused)
            page = render_template(
                "forbidden.html",
                reason=refused.reason,
                username=refused.username,
                group=settings.admins_group,
            )
            return Response(page, status=403)
    if session.get("user") != g.identity.username:
        # A session belongs to one user: a new user starts with a new CSRF token.
        session.clear()
        session["user"] = g.identity.username
    return None


def csrf_token() -> str:
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def check_csrf() -> None:
    """Every state-changing request carries the session's token (form field or htmx header)."""
    if request.method not in UNSAFE_METHODS:
        return
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, sent):
        abort(400, description="csrf")


def _error_page(error: HTTPException) -> tuple[str, int]:
    code = error.code or 500
    return render_template("error.html", code=code, detail=error.description), code


def protected_blueprint(name: str, import_name: str) -> Blueprint:
    """A dashboard blueprint: admins only, CSRF-checked, errors shown as pages."""
    blueprint = Blueprint(name, import_name)
    blueprint.before_request(require_admin)
    blueprint.before_request(check_csrf)
    blueprint.register_error_handler(400, _error_page)
    blueprint.register_error_handler(404, _error_page)
    return blueprint


def _secret_key(settings: Settings) -> bytes:
    """Signs the session cookie; kept in data_dir so a restart does not void open forms."""
    path = settings.data_dir / SECRET_FILE_NAME
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    key = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=False)
        path.write_text(key.hex())
    except OSError as error:  # read-only data_dir: sessions then last as long as the process
        logger.warning("could not keep the session key in %s: %s", path, error)
    return key


class _SessionUnderAppPath(SecureCookieSessionInterface):
    """The session cookie belongs to the path the app is served under (X-Forwarded-Prefix, see
    web/proxy.py), not to the whole domain: two instances on one domain keep their own."""

    def get_cookie_path(self, app: Flask) -> str:
        return request.script_root or "/"


def init_app(app: Flask, settings: Settings, *, dev_mode: bool) -> None:
    app.session_interface = _SessionUnderAppPath()
    app.config.update(
        SECRET_KEY=_secret_key(settings),
        SESSION_COOKIE_NAME="backupmanager_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not dev_mode,  # behind YunoHost the browser always talks HTTPS
    )

    @app.before_request
    def _web_context() -> None:
        g.dev_mode = dev_mode
        g.web_settings = settings

    app.jinja_env.globals["csrf_token"] = csrf_token
