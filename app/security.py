"""Who may reach the explorer and who may change what it serves.

The explorer writes the user's .bib files and the reader study's answers, so the server guards itself as
Jupyter's and datasette's do: it answers only to the host names it was started for (a page that rebinds
its own domain name to 127.0.0.1 is refused), refuses requests that change something when they come from
another origin, and keeps writes behind a random token that the first visit turns into a cookie. Off
loopback the token opens every page. ``--read-only`` serves a corpus with no writes at all.

Write callbacks call ``require_write_access`` before they write; layouts ask ``write_refusal`` whether
to draw their write controls.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

import flask
from werkzeug.exceptions import Forbidden, HTTPException, RequestEntityTooLarge

MB = 1024 * 1024
DEFAULT_MAX_UPLOAD_MB = 50
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A callback that carries an upload holds the file base64-encoded (4/3 of its size) beside the paste box
# and its store, which both hold the text of the previous upload: four times the file bounds it.
REQUEST_FACTOR = 4
EXTENSION = "survey-access"


@dataclass(frozen=True)
class Access:
    """How one server is reached: its token, the host names it answers to, and what it allows."""
    token: str
    hosts: frozenset[str]
    loopback: bool  # listening on a loopback address only: pages open to all, writes need the token
    read_only: bool = False
    max_upload: int = DEFAULT_MAX_UPLOAD_MB * MB  # bytes

    @classmethod
    def for_bind(cls, host: str, token: str | None = None, allow_hosts: tuple[str, ...] = (),
                 read_only: bool = False, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB) -> Access:
        """The access of a server listening on ``host``; a fresh random token unless one is given."""
        named = set() if host in WILDCARDS else {host}
        return cls(token=token or secrets.token_urlsafe(32),
                   hosts=frozenset(h.lower().strip("[]") for h in LOOPBACK_NAMES | named | set(allow_hosts)),
                   loopback=is_loopback(host), read_only=read_only, max_upload=int(max_upload_mb * MB))

    @property
    def cookie_name(self) -> str:
        # cookies ignore the port: a name of the token's own lets two local servers keep theirs apart
        return "survey-token-" + hashlib.sha256(self.token.encode()).hexdigest()[:10]

    @property
    def request_limit(self) -> int:
        return REQUEST_FACTOR * self.max_upload + MB


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def start_url(host: str, port: int, token: str) -> str:
    """The address to open first: it carries the token, which the server turns into a cookie."""
    name = "127.0.0.1" if host in WILDCARDS else host
    name = f"[{name}]" if ":" in name else name
    return f"http://{name}:{port}/?token={quote(token, safe='')}"


def install(app, access: Access) -> None:
    """Guard the Dash ``app``'s server: Host and Origin checks, the token, size limits and headers."""
    server = app.server
    server.extensions[EXTENSION] = access
    server.config["MAX_CONTENT_LENGTH"] = access.request_limit
    server.before_request(check_request)
    # Dash adds its pages' inline scripts at the first request: hash them as they are now
    server.after_request(lambda response: add_headers(response, content_security_policy(app.csp_hashes())))
    for code in (403, 413):
        server.register_error_handler(code, one_line_error)


def content_security_policy(script_hashes: list[str]) -> str:
    """As strict as Dash 4 allows. Its renderer and clientside callbacks are inline scripts, allowed by
    their hashes. The map is a WebGL (scattergl) trace, whose regl library compiles its drawing commands
    with ``new Function``: hence 'unsafe-eval' (without it a click on a paper in the map does nothing).
    Dash's components, its table and plotly add <style> elements at run time, and the reproduction report
    carries its own: hence style-src 'unsafe-inline' (a style cannot run code). Images are data: URLs
    (reader-study patches, report figures) or blob: URLs (figure export)."""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' 'unsafe-eval' " + " ".join(script_hashes),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def access() -> Access:
    return flask.current_app.extensions[EXTENSION]


def check_request():
    """Before every request: the Host, the token (from the URL, or required off loopback), the Origin."""
    settings = access()
    name = host_name(flask.request.host)
    if name not in settings.hosts:
        raise Forbidden(f"Host {flask.request.host!r} is not a name this explorer was started for "
                        f"(if it is yours: survey serve --allow-host {name}).")
    if "token" in flask.request.args and flask.request.method == "GET":
        return sign_in(settings, flask.request.args["token"])
    if not settings.loopback and not has_token():
        raise Forbidden("This explorer needs its token: open the address with ?token= that `survey serve` printed.")
    if flask.request.method not in SAFE_METHODS and not from_own_origin():
        raise Forbidden("This request comes from another site's page; the explorer refuses it.")
    return None


def host_name(host: str) -> str:
    """``host`` of a Host header without its port: "[::1]:8050" -> "::1", "localhost:8050" -> "localhost"."""
    host = host.lower()
    if host.startswith("["):
        return host[1:host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def sign_in(settings: Access, token: str):
    """A visit with ?token=: set the cookie and go to the same page without the token in its address,
    so that it is kept out of the history and of addresses people copy."""
    if not hmac.compare_digest(token.encode(), settings.token.encode()):
        raise Forbidden("This is not the explorer's token: open the address that `survey serve` printed.")
    query = urlencode([(k, v) for k, v in flask.request.args.items(multi=True) if k != "token"])
    response = flask.redirect(flask.request.path + (f"?{query}" if query else ""))
    response.set_cookie(settings.cookie_name, settings.token, httponly=True, samesite="Strict", path="/")
    return response


def has_token() -> bool:
    settings = access()
    given = flask.request.cookies.get(settings.cookie_name, "")
    return hmac.compare_digest(given.encode(), settings.token.encode())


def from_own_origin() -> bool:
    """A browser names the page a request comes from (Origin, else Referer); none named is a client
    that is not a browser, which the token still stops from writing."""
    source = flask.request.headers.get("Origin") or flask.request.headers.get("Referer")
    return source is None or urlsplit(source).netloc.lower() == flask.request.host.lower()


def write_refusal() -> str | None:
    """Why this request may not write (read-only server, no token), or None when it may."""
    if access().read_only:
        return "This explorer is read-only: adding papers, editing tags and reader-study answers are off."
    if not has_token():
        return ("To add papers, edit tags or answer the reader study, open the address with ?token= "
                "that `survey serve` printed.")
    return None


def require_write_access() -> None:
    """Called by every callback before it writes: a 403 unless this request may write."""
    refusal = write_refusal()
    if refusal:
        raise Forbidden(refusal)


def upload_size(contents: str) -> int:
    """The size in bytes of the file in a dcc.Upload data URL ("data:...;base64,...")."""
    encoded = contents.partition(",")[2]
    return len(encoded) * 3 // 4 - encoded[-2:].count("=")


def require_upload_size(contents: str) -> None:
    """A 413 for an upload over the size the server was started with."""
    limit = access().max_upload
    if upload_size(contents) > limit:
        raise RequestEntityTooLarge(f"The file is over {limit / MB:g} MB, the most this explorer takes "
                                    "(survey serve --max-upload MB).")


def one_line_error(error: HTTPException):
    return f"{error.code} {error.name}: {error.description}\n", error.code, {"Content-Type": "text/plain; charset=utf-8"}


def add_headers(response: flask.Response, policy: str) -> flask.Response:
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = policy
    return response
