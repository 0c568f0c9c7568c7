"""Find and load whichever LiteRT runtime the board has, create interpreters, and classify their failures.

Preference: ``ai_edge_litert`` (current LiteRT), then ``tflite_runtime`` (the last release is 2.14, still common on
boards), then the full ``tensorflow.lite``. A request can name one explicitly.

Delegates: ``xnnpack`` (the runtime's default CPU delegate, applied when tensors are allocated), ``none`` (builtin
kernels only), ``edgetpu`` (libedgetpu), or the path of any external delegate library with its options. Whether a
delegate really took the graph is read from the interpreter afterwards (graph.py), and LiteRT's own log line
"Created TensorFlow Lite XNNPACK delegate for CPU." is captured from stderr as a second witness (LiteRT prints it
once per process, so its absence on later loads proves nothing).
"""

import ctypes.util
import importlib
import importlib.util
import os
import sys
import threading
import time

from . import graph as graph_mod
from . import probe
from .protocol import (
    CUSTOM_OP,
    DELEGATE_FAILED,
    MODEL_CORRUPT,
    MODEL_NOT_FOUND,
    OP_UNSUPPORTED,
    RUNTIME_BROKEN,
    RUNTIME_MISSING,
    AgentError,
)

# name -> (module holding Interpreter, module whose __version__ is the runtime's version)
RUNTIMES = (
    ("ai_edge_litert", "ai_edge_litert.interpreter", "ai_edge_litert"),
    ("tflite_runtime", "tflite_runtime.interpreter", "tflite_runtime"),
    ("tensorflow", "tensorflow", "tensorflow"),  # its interpreter: see _tensorflow_lite()
)
# Where TensorFlow keeps its interpreter. ``tf.lite`` is the public API (``tensorflow._api.v2.lite``); the package
# ``tensorflow.lite`` that ``import tensorflow.lite`` finds holds only the sources and has no Interpreter (TF 2.21).
TENSORFLOW_INTERPRETERS = ("tensorflow.lite.python.interpreter",)
INSTALL_HINT = "install one on the board: pip install ai-edge-litert (or tflite-runtime on Python 3.8)"
# Custom ops LiteRT's XNNPACK delegate implements itself (MediaPipe's segmentation models use them): they load only
# when XNNPACK is applied, which ai-edge-litert and tensorflow do by default; tflite-runtime 2.14 does not provide them.
XNNPACK_CUSTOM_OPS = ("Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D")
XNNPACK_LOG = "Created TensorFlow Lite XNNPACK delegate for CPU"
EDGETPU_LIBRARY = "libedgetpu.so.1"


class Runtime(object):
    def __init__(self, name, version, module):
        self.name = name
        self.version = version
        self.module = module

    def describe(self):
        return {"name": self.name, "version": self.version}


def _version_of(package):
    try:
        module = importlib.import_module(package)
        version = getattr(module, "__version__", None)
        if version:
            return str(version)
    except Exception:  # noqa: BLE001 - a broken package has no version, that is all we learn here
        pass
    return _version_of_installed(package)


def _version_of_installed(package):
    try:
        from importlib import metadata  # Python 3.8+

        dist = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}.get(package, package)
        return metadata.version(dist)
    except Exception:  # noqa: BLE001
        return "unknown"


def _tensorflow_lite(tensorflow):
    """The module with TensorFlow's LiteRT ``Interpreter``: ``tf.lite``, else the module that defines it."""
    lite = getattr(tensorflow, "lite", None)
    if lite is not None and hasattr(lite, "Interpreter"):
        return lite
    for module_name in TENSORFLOW_INTERPRETERS:
        try:
            module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001 - an older or trimmed TensorFlow: try the next place
            continue
        if hasattr(module, "Interpreter"):
            return module
    return None


def _import(name, module_name, version_pkg):
    try:
        module = importlib.import_module(module_name)
        if name == "tensorflow":
            module = _tensorflow_lite(module)
    except ImportError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - e.g. numpy ABI errors surface as other exception types
        return None, "%s: %s" % (type(exc).__name__, exc)
    if module is None or not hasattr(module, "Interpreter"):
        where = "tf.lite or %s" % ", ".join(TENSORFLOW_INTERPRETERS) if name == "tensorflow" else module_name
        version = _version_of_installed(version_pkg)
        return None, "%s %s has no LiteRT Interpreter (looked in %s)" % (name, version, where)
    return Runtime(name, _version_of(version_pkg), module), None


def load(preferred=None):
    """The runtime to use, or a structured ``runtime_missing`` error naming what was tried."""
    candidates = [r for r in RUNTIMES if preferred in (None, "", "auto", r[0])]
    if not candidates:
        raise AgentError(
            RUNTIME_MISSING,
            "unknown runtime %r" % preferred,
            "choose one of: %s" % ", ".join(r[0] for r in RUNTIMES),
        )
    reasons = []
    for name, module_name, version_pkg in candidates:
        runtime, why = _import(name, module_name, version_pkg)
        if runtime is not None:
            return runtime
        reasons.append("%s (%s)" % (name, why))
    if preferred not in (None, "", "auto"):
        raise AgentError(
            RUNTIME_MISSING,
            "runtime %s is not available on the board: %s" % (preferred, "; ".join(reasons)),
            "install it (pip install %s) or leave --runtime unset to use the first one found"
            % preferred.replace("_", "-"),
        )
    raise AgentError(RUNTIME_MISSING, "no LiteRT runtime could be imported: " + "; ".join(reasons), INSTALL_HINT)


# --- stderr capture ------------------------------------------------------------------------------------------------


class StderrTee(object):
    """Copy what native code writes to file descriptor 2 while it still reaches the real stderr.

    A pipe and a reader thread rather than a temporary file, so that if the runtime crashes the process, the log
    lines already written have reached the host's stderr tail.
    """

    def __init__(self):
        self.text = ""
        self._chunks = []

    def __enter__(self):
        try:
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        self._saved = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(target=self._pump, args=(read_fd,))
        self._thread.daemon = True
        self._thread.start()
        return self

    def _pump(self, read_fd):
        while True:
            try:
                data = os.read(read_fd, 65536)
            except OSError:
                break
            if not data:
                break
            self._chunks.append(data)
            try:
                os.write(self._saved, data)
            except OSError:
                pass
        os.close(read_fd)

    def __exit__(self, *exc):
        try:
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os.dup2(self._saved, 2)  # closes the pipe's last write end: the reader sees EOF
        self._thread.join(5.0)
        os.close(self._saved)
        self.text = b"".join(self._chunks).decode("utf-8", "replace")
        return False


# --- errors --------------------------------------------------------------------------------------------------------


def _exception_text(exc):
    """The exception's message plus its chained causes (pybind11 hides the real one in __cause__)."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append("%s: %s" % (type(exc).__name__, exc))
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def _numpy_abi_problem(text):
    return (
        "compiled using NumPy 1.x" in text
        or "_ARRAY_API not found" in text
        or "numpy.core.multiarray failed to import" in text
    )


def _first_line(text):
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def classify_load_error(exc, runtime, model_path, stderr=""):
    """Turn a runtime's exception (and what it printed) into one of our error codes with a fix."""
    text = _exception_text(exc)
    both = text + "\n" + (stderr or "")
    where = "%s %s" % (runtime.name, runtime.version)
    if _numpy_abi_problem(both):
        import numpy

        return AgentError(
            RUNTIME_BROKEN,
            "%s was built for NumPy 1.x but the board has NumPy %s" % (where, numpy.__version__),
            "pip install 'numpy<2' in the board's environment, or use ai-edge-litert",
        )
    node = None
    if "Node number" in text and "(" in text.split("Node number")[-1]:
        node = text.split("Node number")[-1].split("(")[1].split(")")[0].strip()
    if "Select TensorFlow op" in text or (node or "").startswith("Flex"):
        return AgentError(
            CUSTOM_OP,
            "the model uses TensorFlow op %s (a Flex custom op from SELECT_TF_OPS), which %s cannot run"
            % (node or "?", where),
            "convert without SELECT_TF_OPS (builtin ops only), or run it with the full tensorflow runtime "
            "(--runtime tensorflow)",
        )
    if "unresolved custom op" in text.lower():
        op = text.split("custom op:")[-1].split(".")[0].strip() if "custom op:" in text else (node or "?")
        if op in XNNPACK_CUSTOM_OPS:
            return AgentError(
                CUSTOM_OP,
                "the model uses custom op %s, which only the XNNPACK delegate provides, and %s ran without it"
                % (op, where),
                "profile with --delegate xnnpack (the default) on ai-edge-litert or tensorflow, whose XNNPACK provides "
                "it; tflite-runtime 2.14 does not",
            )
        return AgentError(
            CUSTOM_OP,
            "the model uses custom op %s, which %s does not provide" % (op, where),
            "convert without allow_custom_ops, or use a runtime build that registers %s" % op,
        )
    if "Didn't find op for builtin opcode" in text:
        detail = text.split("Didn't find op for builtin opcode")[-1].split("\n")[0].strip(" :")
        detail = detail.split("Registration failed")[0].strip().rstrip(".")
        return AgentError(
            OP_UNSUPPORTED,
            "%s is too old for this model: it lacks builtin op %s" % (where, detail),
            "upgrade the runtime on the board (pip install -U ai-edge-litert), or convert with a TensorFlow no newer "
            "than %s" % runtime.version,
        )
    if "delegate" in text.lower() and "Flex" not in text:
        return AgentError(
            DELEGATE_FAILED, "the delegate could not be applied: %s" % _first_line(text), "try --delegate none"
        )
    if not os.path.exists(model_path):
        return AgentError(MODEL_NOT_FOUND, "model file %s does not exist on the board" % model_path, "redeploy")
    first = _first_line(str(exc)) or type(exc).__name__
    return AgentError(
        MODEL_CORRUPT,
        "%s cannot load the model: %s" % (where, first),
        "check that the file is a complete .tflite written by the LiteRT converter",
    )


# --- interpreters --------------------------------------------------------------------------------------------------


def _resolver_type(module):
    return getattr(module, "OpResolverType", None) or getattr(
        getattr(module, "experimental", None), "OpResolverType", None
    )


def _load_delegate_fn(module):
    return getattr(module, "load_delegate", None) or getattr(
        getattr(module, "experimental", None), "load_delegate", None
    )


def _interpreter_kwargs(runtime, threads, delegate, delegate_options):
    module = runtime.module
    kwargs = {}
    if threads:
        kwargs["num_threads"] = int(threads)
    if delegate in (None, "", "xnnpack", "default"):
        return kwargs
    if delegate == "none":
        resolver = _resolver_type(module)
        if resolver is None:
            raise AgentError(
                DELEGATE_FAILED,
                "%s %s cannot turn XNNPACK off (no OpResolverType)" % (runtime.name, runtime.version),
                "use --delegate xnnpack, or upgrade the runtime",
            )
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        return kwargs
    library = EDGETPU_LIBRARY if delegate == "edgetpu" else delegate
    load_delegate = _load_delegate_fn(module)
    if load_delegate is None:
        raise AgentError(
            DELEGATE_FAILED, "%s has no load_delegate()" % runtime.name, "use a runtime that loads external delegates"
        )
    options = dict((str(k), str(v)) for k, v in (delegate_options or {}).items())
    try:
        kwargs["experimental_delegates"] = [load_delegate(library, options)]
    except Exception as exc:  # noqa: BLE001
        why = _first_line(str(exc)) or type(exc).__name__
        fix = (
            "install libedgetpu (libedgetpu1-std) and attach the Edge TPU"
            if delegate == "edgetpu"
            else "install the delegate library on the board or pass its full path"
        )
        raise AgentError(DELEGATE_FAILED, "cannot load delegate %s: %s" % (library, why), fix)
    return kwargs


def make_interpreter(runtime, model_path, threads=None, delegate="xnnpack", delegate_options=None):
    """Create and allocate the interpreter, mapping every failure to a structured error.

    Returns ``(interpreter, info)``: ``info`` holds the load and allocate times and what the runtime printed.
    """
    if not os.path.isfile(model_path):
        raise AgentError(MODEL_NOT_FOUND, "model file %s does not exist on the board" % model_path, "redeploy")
    kwargs = _interpreter_kwargs(runtime, threads, delegate, delegate_options)
    kwargs["model_path"] = model_path
    return _create(runtime, kwargs, model_path)


def _create(runtime, kwargs, model_path):
    from . import memory

    info = {}
    tee = StderrTee()
    try:
        with tee:
            t0 = time.perf_counter()
            interpreter = runtime.module.Interpreter(**kwargs)
            t1 = time.perf_counter()
            rss_created = memory.rss_kb()
            interpreter.allocate_tensors()
            t2 = time.perf_counter()
            rss_allocated = memory.rss_kb()
    except AgentError:
        raise
    except Exception as exc:  # noqa: BLE001 - every runtime raises its own types
        raise classify_load_error(exc, runtime, model_path, tee.text)
    info["load_ms"] = (t1 - t0) * 1000.0
    info["allocate_ms"] = (t2 - t1) * 1000.0
    if rss_created is not None and rss_allocated is not None:
        info["rss_allocate_delta_kb"] = rss_allocated - rss_created
    info["stderr"] = tee.text
    return interpreter, info


def delegation_report(interpreter, delegate, stderr_text):
    """What actually ran where, with the evidence."""
    g = graph_mod.read(interpreter)
    requested = delegate or "xnnpack"
    report = {"requested": requested}
    if g is None:
        report["applied"] = None
        report["evidence"] = "this runtime does not expose its execution graph"
    else:
        report.update(g.delegation())
        report["applied"] = g.delegation()["delegate_nodes"] > 0
        report["evidence"] = "DELEGATE nodes in the interpreter's execution graph after allocate_tensors()"
    if XNNPACK_LOG in (stderr_text or ""):
        report["log"] = XNNPACK_LOG + "."
    if requested == "none" and report.get("applied"):
        report["warning"] = "delegate 'none' was requested but the graph still holds delegate nodes"
    return report, g


# --- what hello reports --------------------------------------------------------------------------------------------


def _probe_runtime(runtime):
    """Load the probe models with the runtime's defaults: does it work here, and does XNNPACK take them?"""
    result = {"usable": True}
    xnnpack = {}
    for kind in ("float32", "int8"):
        try:
            with StderrTee() as tee:
                interpreter = runtime.module.Interpreter(model_content=probe.model(kind))
                interpreter.allocate_tensors()
                interpreter.invoke()
        except Exception as exc:  # noqa: BLE001
            error = classify_load_error(exc, runtime, "<probe>", tee.text)
            if error.code == RUNTIME_BROKEN:
                return {"usable": False, "problem": error.message, "fix": error.fix}
            xnnpack[kind] = False
            result.setdefault("probe_errors", {})[kind] = error.message
            continue
        g = graph_mod.read(interpreter)
        xnnpack[kind] = (g.delegation()["delegate_nodes"] > 0) if g is not None else None
    result["xnnpack"] = xnnpack
    return result


def available():
    """Every runtime that imports and works, and why the others do not: for ``hello``.

    The full TensorFlow takes seconds and hundreds of MB to import, which would spoil the memory figures of the
    run that follows; it is reported as found, without importing it, and only loaded when chosen.
    """
    found, missing = [], {}
    for name, module_name, version_pkg in RUNTIMES:
        if name == "tensorflow":
            if importlib.util.find_spec("tensorflow") is None:
                missing[name] = "not installed"
            else:
                found.append({"name": name, "version": _version_of_installed("tensorflow"), "imported": False})
            continue
        runtime, why = _import(name, module_name, version_pkg)
        if runtime is None:
            missing[name] = why
            continue
        entry = runtime.describe()
        entry.update(_probe_runtime(runtime))
        found.append(entry)
    return found, missing


def _find_library(filename, short):
    path = ctypes.util.find_library(short)
    if path:
        return path
    for folder in ("/usr/lib", "/usr/local/lib", "/usr/lib/aarch64-linux-gnu", "/usr/lib/x86_64-linux-gnu"):
        candidate = os.path.join(folder, filename)
        if os.path.exists(candidate):
            return candidate
    return None


def delegates(found):
    """The delegates this board can use, with the evidence for each."""
    usable = [r for r in found if r.get("usable", True) and r.get("imported", True)]
    first = usable[0] if usable else None
    xnnpack = (first or {}).get("xnnpack", {})
    entries = [
        {
            "name": "xnnpack",
            "available": bool(first) and any(xnnpack.values()),
            "float32": xnnpack.get("float32"),
            "int8": xnnpack.get("int8"),
            "evidence": "probe models loaded with %s's defaults" % first["name"] if first else "no usable runtime",
        },
        {
            "name": "none",
            "available": bool(first) and _resolver_type(load(first["name"]).module) is not None,
        },
    ]
    library = _find_library(EDGETPU_LIBRARY, "edgetpu")
    edgetpu = {"name": "edgetpu", "available": library is not None, "library": library}
    if library is None:
        edgetpu["reason"] = "%s not found (install libedgetpu1-std)" % EDGETPU_LIBRARY
    else:
        edgetpu["note"] = "the library is present; loading it also needs an attached Edge TPU"
    entries.append(edgetpu)
    entries.append({"name": "external", "available": bool(first), "note": "any delegate library: --delegate PATH"})
    return entries
