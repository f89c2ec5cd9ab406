"""One structured logger for every service: JSON lines on stderr.

    log = get_logger(__name__)
    log.info("model loaded", extra={"fields": {"model": name, "seconds": 0.1}})

Every line carries the time, level, service, logger and message, plus the ``fields`` given,
plus ``request_id`` while one is set for the current request (``REQUEST_ID.set(...)`` in a
handler: asyncio tasks and their callbacks carry it), plus ``trace_id`` and ``span_id`` of the
current span while tracing is on (upcoach_llm.common.tracing installs the hook).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from urllib.parse import parse_qsl, urlsplit

from upcoach_llm.common.variables import VARIABLES

_SERVICE = "upcoach"
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")
_trace_ids: Callable[[], tuple[str, str] | None] | None = None
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": _SERVICE,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        if _trace_ids is not None:
            ids = _trace_ids()
            if ids is not None:
                entry["trace_id"], entry["span_id"] = ids
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def set_trace_ids(source: Callable[[], tuple[str, str] | None] | None) -> None:
    """Where log lines get the current (trace id, span id) from; None: they carry none."""
    global _trace_ids
    _trace_ids = source


def parse_level(value: str) -> int:
    """Maps a LOG_LEVEL value (debug, info, warn, error) to a logging level."""
    level = _LEVELS.get(value.strip().lower())
    if level is None:
        from upcoach_llm.common.errors import ConfigError

        raise ConfigError(f"LOG_LEVEL: {value!r} is not one of {', '.join(_LEVELS)}")
    return level


def configure_logging(service: str, level: str | None = None) -> None:
    """Sends every logger's records, as JSON lines, to stderr; call once at start-up."""
    global _SERVICE
    _SERVICE = service
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(parse_level(level or VARIABLES.str("LOG_LEVEL")))


def get_logger(name: str) -> logging.Logger:
    """Returns the named logger (configure_logging decides where it writes)."""
    return logging.getLogger(name)


_SECRET_PARAMETERS = frozenset({"password", "username"})


def without_password(url: str) -> str:
    """A URL as logs and errors may show it: its user info, and the ``password`` and ``username``
    query parameters (redis-py reads them), masked."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed host ("[otel:4317"): nothing of it is shown
        return "<a URL that does not parse>"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if "@" not in parts.netloc and not any(n.lower() in _SECRET_PARAMETERS for n, _ in pairs):
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(f"{name}=***" if name.lower() in _SECRET_PARAMETERS else f"{name}={value}"
                     for name, value in pairs)
    shown = f"{parts.scheme}://{netloc}{parts.path}"  # urlunsplit drops unix:// 's empty host
    return f"{shown}?{query}" if query else shown
