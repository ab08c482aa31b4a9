"""gunicorn target: ``extender.wsgi:app``, configured from ``EXTENDER_*`` variables."""

from extender.server.app import create_app
from extender.settings import Settings

app = create_app(Settings.from_env())
