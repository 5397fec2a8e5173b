"""JSON logs, one object per line, for every process.

Never log a password, code, secret or token: pass identifiers, not credentials.
As a second line of defence, fields whose names say they hold a credential are
written as ``"[redacted]"``. Every line written while a request or call is being
handled carries its ``request_id`` and ``trace_id`` (see ``tracing.py``).
"""

from __future__ import annotations

import json
import logging
import sys
import time

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

# Extra fields never written as given, whatever a caller passes.
_SECRET_FIELDS = frozenset(
    {
        "password",
        "new_password",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "authorization",
        "cookie",
        "code",
        "totp",
        "otp",
        "recovery_code",
    }
)
_SECRET_ENDINGS = ("_password", "_secret", "_token", "_key")


def _is_secret_field(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SECRET_FIELDS or lowered.endswith(_SECRET_ENDINGS)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = "[redacted]" if _is_secret_field(key) else value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TraceFilter(logging.Filter):
    """Adds the current request id and trace id to records that do not carry their own."""

    def filter(self, record: logging.LogRecord) -> bool:
        from services.common import tracing

        trace = tracing.current()
        if trace is not None:
            if not getattr(record, "request_id", None):
                record.request_id = trace.request_id
            if not getattr(record, "trace_id", None):
                record.trace_id = trace.trace_id
        return True


def json_handler(service: str, stream=None) -> logging.Handler:  # type: ignore[no-untyped-def]
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(TraceFilter())
    return handler


def configure(service: str, level: str = "INFO") -> None:
    handler = json_handler(service)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Werkzeug's own request lines duplicate ours and are not JSON.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
