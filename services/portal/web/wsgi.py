"""The portal's WSGI entry point for gunicorn (``services.portal.web.wsgi:app``).

Each gunicorn worker imports this after the fork, so every worker gets its own
connections; settings errors stop the worker at start with the variable named.
"""

from __future__ import annotations

import os

from services.common import logs
from services.portal.settings import Settings
from services.portal.web.app import create_app

logs.configure("portal")
app = create_app(Settings.from_env(os.environ))
