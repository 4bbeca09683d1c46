"""Structured logs: one JSON object per line, to stderr and a rotating file.

JSON lines because operators grep them and tools ingest them alike; the file rotates at
5 MiB keeping 5 old files, so a long-running hub never fills a disk with logs.
"""

from __future__ import annotations

import errno
import json
import logging
import logging.handlers
import sys
import time
from pathlib import Path

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
#: The file :func:`setup` logs to, for a crash dialog that must say where to look.
_current_file: Path | None = None


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class LogFile(logging.handlers.RotatingFileHandler):
    """The rotating log file, which a full disk pauses instead of flooding stderr.

    The stock handler prints a "--- Logging error ---" traceback to stderr for every
    record it cannot write; on a full data dir that is every line the process logs. Here
    the first record lost says so once (on stderr, which still works), the others are
    dropped, and writing resumes by itself with the first record there is room for.
    """

    paused = False
    _failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)):
            super().handleError(record)
            return
        self._failed = True
        if not self.paused and sys.stderr is not None:
            sys.stderr.write(f"the disk holding the log file {self.baseFilename} is full: "
                             "file logging is paused until there is room again\n")
        self.paused = True

    def emit(self, record: logging.LogRecord) -> None:
        self._failed = False
        super().emit(record)
        if self.paused and not self._failed:
            self.paused = False


def current_file() -> Path | None:
    """The log file of this process, once :func:`setup` has run."""
    return _current_file


def setup(level: str, log_file: Path | None, component: str) -> None:
    global _current_file
    _current_file = log_file
    formatter = JsonFormatter(component)
    root = logging.getLogger()
    for old in list(root.handlers):  # closed, so a file set up before is not leaked
        root.removeHandler(old)
        old.close()
    root.setLevel(level.upper())
    if sys.stderr is not None:  # None in a windowed PyInstaller build
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        root.addHandler(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = LogFile(
            log_file, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
        )
        rotating.setFormatter(formatter)
        root.addHandler(rotating)
    # uvicorn and websockets are chatty at INFO about every connection.
    for noisy in ("uvicorn.error", "websockets", "httpx", "qasync"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
