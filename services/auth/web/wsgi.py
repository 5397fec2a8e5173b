"""The WSGI entry point gunicorn loads: ``services.auth.web.wsgi:app``.

First-start work (signing key, portal client) runs once in ``providerctl auth web``
before gunicorn forks, not in every worker.
"""

import os

from services.auth.bootstrap import build
from services.auth.settings import Settings
from services.auth.web.app import create_app
from services.common import logs

logs.configure("auth")
_container = build(Settings.from_env(os.environ))
app = create_app(_container)
