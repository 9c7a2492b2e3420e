"""WSGI entry point, served by gunicorn (see bin/run)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings")

application = get_wsgi_application()
