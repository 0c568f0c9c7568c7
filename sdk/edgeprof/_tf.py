"""Import TensorFlow the only way TF-MOT works with it.

TF-MOT needs Keras 2 (``tf_keras``): ``TF_USE_LEGACY_KERAS`` must be set before the first ``import tensorflow``.
oneDNN is switched off because training some models with it crashed TF 2.21 on CPU. TensorFlow is imported lazily
so that profiling, which never needs it, starts fast and works without it installed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import ModuleType

from .errors import EdgeprofError

_ENV = {"TF_USE_LEGACY_KERAS": "1", "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}


def configure_environment() -> None:
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def quiet_native() -> Iterator[None]:
    """Keep TensorFlow's C++ chatter (CUDA probing, converter statistics) off the user's terminal.

    File descriptor 2 goes to a scratch file while Python's own ``sys.stderr`` keeps writing to the terminal, so
    our progress lines and errors still show. ``EDGEPROF_DEBUG=1`` shows everything.
    """
    if os.environ.get("EDGEPROF_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved_fd = os.dup(2)
    saved_stream = sys.stderr
    # TensorFlow's Python warnings too (retracing, gradients of frozen variables), also when the caller imported
    # TensorFlow before edgeprof did and so its logger kept the default level.
    tf_logger = logging.getLogger("tensorflow")
    saved_level = tf_logger.level
    tf_logger.setLevel(max(saved_level, logging.ERROR))
    with tempfile.TemporaryFile() as log, open(os.dup(saved_fd), "w", buffering=1) as terminal:
        os.dup2(log.fileno(), 2)
        sys.stderr = terminal
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Ss]tatistics for quantized inputs.*")
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                yield
        finally:
            terminal.flush()
            sys.stderr = saved_stream
            _rebind_handlers(terminal, saved_stream)
            tf_logger.setLevel(saved_level)
            os.dup2(saved_fd, 2)
            os.close(saved_fd)


def _rebind_handlers(old: object, new: object) -> None:
    """Logging handlers made inside ``quiet_native`` (TensorFlow's, on its logger's first use) hold the stream about
    to be closed: give them the stderr the block restores, or every later log line is a "Logging error"."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)  # type: ignore[arg-type]


def tensorflow() -> ModuleType:
    configure_environment()
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    try:
        with quiet_native():
            import tensorflow as tf
    except ImportError as exc:
        raise EdgeprofError(f"TensorFlow is not installed ({exc})", "pip install 'edgeprof[compress]'") from None
    tf.get_logger().setLevel("ERROR")
    return tf


def keras() -> ModuleType:
    tensorflow()
    try:
        import tf_keras
    except ImportError:
        raise EdgeprofError("tf-keras is not installed", "pip install 'edgeprof[compress]'") from None
    return tf_keras


def tfmot() -> ModuleType:
    keras()
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError:
        raise EdgeprofError(
            "tensorflow-model-optimization is not installed", "pip install 'edgeprof[compress]'"
        ) from None
    return tfmot
