"""WSGI entry point: plain HTTP (ingest above all) behind granian in production (muster.webserver).

The ingest endpoints are served without Django's middleware: their callers are monitoring
systems, and sessions, users, CSRF tokens, messages, static files and browser headers mean
nothing to them (the views are CSRF-exempt and read only the body, a few headers and the
path). That is 0.045 ms of CPU a request, ~5% of a single-alert request. Nothing on those paths
builds a URL from the Host header, so ALLOWED_HOSTS, which CommonMiddleware enforces, has
nothing to protect there. One check stays: under an https public URL, a plain-HTTP POST is
refused (muster.middleware). Everything else gets the whole stack.
"""

import os

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

from muster.middleware import RefusePlainHttpWrites

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muster.settings")

# Alertmanager, Grafana, generic JSON and heartbeats; PagerDuty's and Opsgenie's native paths.
INGEST_PATH_PREFIXES = ("/integrations/", "/v2/")


class IngestHandler(WSGIHandler):
    """Django's WSGI handler with no middleware but the plain-HTTP refusal."""

    def load_middleware(self, is_async: bool = False) -> None:
        # What BaseHandler.load_middleware builds from MIDDLEWARE = [RefusePlainHttpWrites]
        # (Django 5.2).
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(
            RefusePlainHttpWrites(convert_exception_to_response(self._get_response))
        )


django_application = get_wsgi_application()
ingest_application = IngestHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(INGEST_PATH_PREFIXES):
        return ingest_application(environ, start_response)
    return django_application(environ, start_response)
