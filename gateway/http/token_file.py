"""Token rotation without a restart: `GATEWAY_TOKENS_FILE` is watched, and every worker
applies the same tokens.

Usage::

    watcher = TokensFileWatcher(path, settings.tokens)   # what start-up read (valid)
    new = watcher.poll()          # the new tokens when the file changed and is valid

    with shared_tokens_file(path):                 # in the supervisor, around the workers
        ...                                        # workers then watch its private copy

One mechanism, two places. Each worker polls the file it was given (a `stat` per
second; cheap) and swaps its access policy's tokens when the content changes and is
valid. A file that does not parse, lists no tokens or cannot be read is never applied:
the last good tokens stay, with an error in the log naming the problem.

With several workers (`serve --workers N`), the workers must never disagree, and a
worker that restarts must not read a file that broke meanwhile (it would crash-loop
while the others serve on, or, worse, serve other tokens). So the supervisor alone
watches the operator's file and keeps a private copy of its last good content, which
it replaces atomically; workers are pointed at the copy. Every worker, restarted or
not, then sees the same last good tokens within about two polling intervals.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator

from gateway.config import ConfigError, TokenSpec, read_tokens_file
from gateway.http.access import AccessPolicy

logger = logging.getLogger("gateway.tokens")

#: Seconds between two looks at the file.
POLL_SECONDS = 1.0
_Signature = tuple[int, int, int, int]


def _signature(path: str) -> _Signature | None:
    """What changes when the file is rewritten or replaced (a symlink swap included, as
    Kubernetes does for mounted secrets); None when it cannot be looked at."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev)


class TokensFileWatcher:
    """The tokens of one file, re-read when it changes; the last good ones kept."""

    def __init__(self, path: str, tokens: tuple[TokenSpec, ...]) -> None:
        self.path = path
        self.tokens = tokens
        self._seen = _signature(path)

    def poll(self) -> tuple[TokenSpec, ...] | None:
        """The file's tokens if it changed since the last look and is valid, else None
        (unchanged, or broken: then logged, and the last good tokens stand)."""
        signature = _signature(self.path)
        if signature == self._seen:
            return None
        self._seen = signature
        try:
            tokens = read_tokens_file(self.path)
        except ConfigError as exc:
            logger.error(
                "tokens file not applied, still using the %d tokens loaded before: %s",
                len(self.tokens),
                exc,
                extra={"event": "tokens_rejected"},
            )
            return None
        if tokens == self.tokens:
            return None
        logger.info(
            "tokens file applied: %d tokens (were %d)",
            len(tokens),
            len(self.tokens),
            extra={"event": "tokens_applied", "tokens": [spec.name for spec in tokens]},
        )
        self.tokens = tokens
        return tokens


async def apply_token_changes(watcher: TokensFileWatcher, access: AccessPolicy) -> None:
    """In a worker: apply each valid change of the watched file to `access`, until
    cancelled."""
    while True:
        await asyncio.sleep(POLL_SECONDS)
        tokens = watcher.poll()
        if tokens is not None:
            access.replace_tokens(tokens)


@contextlib.contextmanager
def shared_tokens_file(path: str, tokens: tuple[TokenSpec, ...]) -> Iterator[str]:
    """In the supervisor: a private copy of the tokens file's last good content, kept
    current by a thread that watches `path`; yields the copy's path for the workers.

    `tokens` is what start-up read from `path` (already valid). The copy lives in a
    directory only this user can read, and is replaced atomically (`os.replace`), so a
    worker never reads half of it.
    """
    directory = tempfile.mkdtemp(prefix="kombo-gateway-tokens-")
    copy = os.path.join(directory, "tokens.json")
    watcher = TokensFileWatcher(path, tokens)
    _write_copy(copy, watcher.tokens)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(POLL_SECONDS):
            try:
                if watcher.poll() is not None:
                    _write_copy(copy, watcher.tokens)
            except Exception:  # a watcher that dies would freeze rotation silently
                logger.exception("watching the tokens file failed; tokens unchanged")

    thread = threading.Thread(target=watch, name="tokens-file", daemon=True)
    thread.start()
    try:
        yield copy
    finally:
        stop.set()
        thread.join(timeout=POLL_SECONDS * 2)
        shutil.rmtree(directory, ignore_errors=True)


def _write_copy(path: str, tokens: tuple[TokenSpec, ...]) -> None:
    """Write `tokens` in `GATEWAY_TOKENS_FILE`'s own format, atomically."""
    entries = [spec.entry() for spec in tokens]
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(entries, file, indent=1)
    os.replace(temporary, path)
