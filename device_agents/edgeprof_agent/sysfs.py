"""Every board-wide file the agent reads (sysfs, procfs, the device tree, /etc) goes through one root.

``EDGEPROF_SYSFS_ROOT`` (default ``/``) is prefixed to those paths, so the tests can point a real agent process at a
fake tree laid out exactly as the kernel documents it. Code works with board paths (``/sys/class/hwmon/...``) and
never sees the prefix; results report board paths too. The process's own files (``/proc/self/...``) are not board
facts and are always read for real.
"""

import glob as _glob
import os

ENV = "EDGEPROF_SYSFS_ROOT"


def root():
    return os.environ.get(ENV) or "/"


def real(path):
    """The path on this machine's file system for a board path."""
    base = root()
    if base == "/":
        return path
    return os.path.join(base, path.lstrip("/"))


def board(path):
    """The board path for a path on this machine (the inverse of :func:`real`)."""
    base = root()
    if base == "/":
        return path
    base = base.rstrip("/")
    if path == base:
        return "/"
    if path.startswith(base + "/"):
        return path[len(base) :]
    return path


def exists(path):
    return os.path.exists(real(path))


def isdir(path):
    return os.path.isdir(real(path))


def glob(pattern):
    """Board paths matching ``pattern``, sorted naturally (hwmon2 before hwmon10)."""
    return sorted((board(p) for p in _glob.glob(real(pattern))), key=natural_key)


def listdir(path):
    try:
        return sorted(os.listdir(real(path)), key=natural_key)
    except OSError:
        return []


def natural_key(text):
    parts = []
    number = ""
    word = ""
    for char in text:
        if char.isdigit():
            if word:
                parts.append((1, word, 0))
                word = ""
            number += char
        else:
            if number:
                parts.append((0, "", int(number)))
                number = ""
            word += char
    if number:
        parts.append((0, "", int(number)))
    if word:
        parts.append((1, word, 0))
    return parts


def read_bytes(path):
    """The file's bytes, or None when it is missing or unreadable (sensors vanish, permissions differ)."""
    try:
        with open(real(path), "rb") as handle:
            return handle.read()
    except (OSError, ValueError):
        return None


def read_text(path):
    """Text with NULs removed and whitespace stripped (device-tree strings end in NUL)."""
    data = read_bytes(path)
    if data is None:
        return None
    return data.decode("utf-8", "replace").replace("\x00", "").strip()


def read_int(path):
    text = read_text(path)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def read_strings(path):
    """A NUL-separated list, as device-tree ``compatible`` is."""
    data = read_bytes(path)
    if data is None:
        return None
    return [s for s in data.decode("utf-8", "replace").split("\x00") if s]


def open_reader(path):
    """A cheap repeated reader for a sensor file: one open descriptor, re-read from offset 0.

    sysfs attributes are regenerated on every read from offset 0, so keeping the descriptor open avoids an
    open/close per sample in the energy sampler. Returns None when the file cannot be opened.
    """
    try:
        fd = os.open(real(path), os.O_RDONLY)
    except OSError:
        return None
    return _Reader(fd, path)


class _Reader(object):
    def __init__(self, fd, path):
        self.fd = fd
        self.path = path

    def read_int(self):
        """The integer in the file; raises OSError or ValueError when the sensor fails."""
        data = os.pread(self.fd, 64, 0)
        return int(data.split()[0])

    def close(self):
        try:
            os.close(self.fd)
        except OSError:
            pass
