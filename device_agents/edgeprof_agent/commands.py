"""Board tools the agent may call (``vcgencmd``, ``getprop``): found on PATH, run as argument lists, time-limited.

A tool that is missing, hangs or fails yields None and a reason; it never takes the agent down with it.
"""

import os
import shutil
import subprocess


def which(name):
    return shutil.which(name)


def run(argv, timeout=5.0):
    """``(stdout, None)`` on success, ``(None, reason)`` otherwise. No shell is involved."""
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            close_fds=True,
        )
    except FileNotFoundError:
        return None, "%s is not installed" % argv[0]
    except subprocess.TimeoutExpired:
        return None, "%s did not answer within %.0f s" % (" ".join(argv), timeout)
    except OSError as exc:
        return None, "cannot run %s: %s" % (argv[0], exc)
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, "%s exited with %d%s" % (" ".join(argv), done.returncode, (": " + err[-1]) if err else "")
    return done.stdout.decode("utf-8", "replace"), None


def is_termux():
    prefix = os.environ.get("PREFIX", "")
    return bool(os.environ.get("TERMUX_VERSION")) or "com.termux" in prefix
