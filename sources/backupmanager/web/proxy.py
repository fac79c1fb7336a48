"""Serving under a sub-path behind nginx (`X-Forwarded-Prefix`), whether nginx strips it or not."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PrefixMiddleware:
    """Set SCRIPT_NAME from X-Forwarded-Prefix so that url_for() makes links under the app's path.

    Only our nginx reaches the process (it listens on 127.0.0.1), and our nginx conf always sets
    this header, so a client cannot choose it.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        prefix = str(environ.get("HTTP_X_FORWARDED_PREFIX", "")).rstrip("/")
        if prefix.startswith("/") and "\n" not in prefix:
            environ["SCRIPT_NAME"] = prefix
            path = str(environ.get("PATH_INFO", ""))
            if path == prefix or path.startswith(prefix + "/"):
                environ["PATH_INFO"] = path[len(prefix) :] or "/"
        return self.app(environ, start_response)
