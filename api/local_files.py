"""Values the service makes once and keeps in its data directory (the avatar family's key and
session-token secret, the operator token), and the data directory they are kept in.

Why a module: the avatar family and the operator API both make a secret at the first start,
print it where a user needs it, and must agree on it across processes and restarts."""

from __future__ import annotations

import os
import tempfile

__all__ = ["data_dir", "read_or_create"]


def data_dir() -> str:
    """The runtime's data directory in this process (the environment's when none runs)."""
    from api.runtime import current
    from runtime.settings import RuntimeSettings

    try:
        return current().settings.data_dir
    except RuntimeError:
        return os.path.abspath(RuntimeSettings.load().data_dir or "data")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def read_or_create(path: str, make: str) -> str:
    """The file's content; if there is no file, ``make`` is written first, mode 0600. The file
    appears whole or not at all (written aside, then linked into place), so two processes
    starting at once agree on one value and neither reads a half-written one."""
    found = _read(path)
    if found is not None:
        return found
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, aside = tempfile.mkstemp(dir=folder, prefix=".new-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(make + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(aside, 0o600)
        try:
            os.link(aside, path)  # fails if another process made it first: theirs wins
            return make
        except FileExistsError:
            return _read(path) or make
    finally:
        os.unlink(aside)
