"""ASGI entry point: HTTP and websockets under daphne.

Request bodies are capped before they are read (MAX_BODY_BYTES, muster.body_limit), and a
production process refuses to start with a placeholder SECRET_KEY (muster.startup).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muster.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from core import live  # noqa: E402
from muster.body_limit import BodyLimit, install_daphne_cap  # noqa: E402
from muster.routing import websocket_urlpatterns  # noqa: E402
from muster.startup import check_secret_key  # noqa: E402

check_secret_key()
install_daphne_cap(settings.MAX_BODY_BYTES)


class BrowserOriginValidator(OriginValidator):
    """Refuse a websocket whose Origin is not one of ours; let one without Origin through.

    Browsers always send Origin, and cross-site websocket hijacking rides on their cookies, so
    a browser's Origin must be an allowed host. Scripts, bots and benchmarks send none and must
    sign in with an API token, which no other site can make them send.
    """

    def valid_origin(self, parsed_origin) -> bool:
        return parsed_origin is None or super().valid_origin(parsed_origin)


class NoteServerLoop:
    """Tell core.live which loop serves: the in-memory channel layer (embedded mode) lives on
    it, and the embedded worker's threads send to it there."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        live.note_server_loop()
        return await self.app(scope, receive, send)


application = NoteServerLoop(
    ProtocolTypeRouter(
        {
            "http": BodyLimit(django_asgi_app, settings.MAX_BODY_BYTES),
            "websocket": BrowserOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), settings.ALLOWED_HOSTS
            ),
        }
    )
)
