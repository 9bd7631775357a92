"""WSGI entry point: plain HTTP (ingest above all) behind gunicorn in production."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muster.settings")
application = get_wsgi_application()
