"""JSON logs: one JSON object per line on stderr, fields kept as fields."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has: whatever else a record carries came from `extra`.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `ts`, `level`, `logger`, `message`, the record's
    `extra` fields, and `exception` (the formatted traceback) when there is one.

    Log shippers parse it without regexes, and fields stay fields (`status`,
    `duration_ms`) instead of being baked into a sentence. An `extra` field may not
    replace one of the four base fields; values JSON cannot encode are logged as str.
    """

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": _utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in payload:
                payload[key] = value
        if record.exc_info:
            payload["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def _utc_timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _JsonHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs; its class is how it finds it again."""


def configure_logging(level: str = "INFO") -> None:
    """Send the root logger's records to stderr as JSON lines, at `level`.

    Idempotent: a second call only changes the level, it never adds a second handler
    (which would print every line twice). Other handlers are left alone.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())
    # httpx logs every upstream call at INFO; the request's own line already counts
    # them (and the metrics time them), so that would be a second line per call.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    if any(isinstance(handler, _JsonHandler) for handler in root.handlers):
        return
    handler = _JsonHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
