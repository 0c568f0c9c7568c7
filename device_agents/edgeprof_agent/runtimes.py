"""Find and load whichever LiteRT runtime the board has.

Preference: ``ai_edge_litert`` (current LiteRT), then ``tflite_runtime`` (the last release is 2.14, still common on
boards), then the full ``tensorflow.lite``. A request can name one explicitly.
"""

import importlib
import importlib.util
import os

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
    ("tensorflow", "tensorflow.lite", "tensorflow"),
)
INSTALL_HINT = "install one on the board: pip install ai-edge-litert (or tflite-runtime on Python 3.8)"


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


def _import(name, module_name, version_pkg):
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - e.g. numpy ABI errors surface as other exception types
        return None, "%s: %s" % (type(exc).__name__, exc)
    if name == "tensorflow":
        module = getattr(module, "lite", module)
    return Runtime(name, _version_of(version_pkg), module), None


def available():
    """Every runtime that imports, and why the others do not: for ``hello``.

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
        else:
            found.append(runtime.describe())
    return found, missing


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
    raise AgentError(RUNTIME_MISSING, "no LiteRT runtime could be imported: " + "; ".join(reasons), INSTALL_HINT)


def _numpy_abi_problem(text):
    return "compiled using NumPy 1.x" in text or "numpy.core.multiarray failed to import" in text


def classify_load_error(exc, runtime, model_path):
    """Turn a runtime's exception text into one of our error codes with a fix."""
    text = str(exc)
    where = "%s %s" % (runtime.name, runtime.version)
    if _numpy_abi_problem(text):
        return AgentError(
            RUNTIME_BROKEN,
            "%s was built for NumPy 1.x but the board has NumPy 2" % where,
            "pip install 'numpy<2' in the board's environment, or use ai-edge-litert",
        )
    if "unresolved custom op" in text.lower() or "custom op" in text.lower():
        op = text.split("custom op:")[-1].split(".")[0].strip() if "custom op:" in text else "?"
        return AgentError(
            CUSTOM_OP,
            "the model uses custom op %s, which %s does not provide" % (op, where),
            "re-export without custom ops, or register the op's library with --delegate/--runtime",
        )
    if "Didn't find op for builtin opcode" in text:
        detail = text.split("Didn't find op for builtin opcode")[-1].split("\n")[0].strip(" :")
        return AgentError(
            OP_UNSUPPORTED,
            "%s lacks builtin op %s" % (where, detail),
            "re-export for this runtime (edgeprof compress --runtime %s-%s) or upgrade the runtime"
            % (runtime.name.replace("_", "-"), runtime.version),
        )
    if "delegate" in text.lower():
        return AgentError(DELEGATE_FAILED, "the delegate could not be applied: %s" % text, "try --delegate none")
    if not os.path.exists(model_path):
        return AgentError(MODEL_NOT_FOUND, "model file %s does not exist on the board" % model_path, "redeploy")
    return AgentError(
        MODEL_CORRUPT,
        "%s cannot load the model: %s" % (where, text.strip().splitlines()[0] if text.strip() else type(exc).__name__),
        "check that the file is a complete .tflite written by the LiteRT converter",
    )


def make_interpreter(runtime, model_path, threads=None, delegate="xnnpack", delegate_options=None):
    """Create the interpreter, mapping every failure to a structured error.

    ``delegate``: ``xnnpack`` (the runtime's default CPU delegate), ``none`` (plain builtin kernels), ``edgetpu``
    (libedgetpu), or a path to an external delegate library.
    """
    if not os.path.isfile(model_path):
        raise AgentError(MODEL_NOT_FOUND, "model file %s does not exist on the board" % model_path, "redeploy")
    module = runtime.module
    kwargs = {"model_path": model_path}
    if threads:
        kwargs["num_threads"] = int(threads)
    resolver = getattr(module, "OpResolverType", None) or getattr(
        getattr(module, "experimental", None), "OpResolverType", None
    )
    if delegate in (None, "", "xnnpack", "default"):
        pass
    elif delegate == "none":
        if resolver is None:
            raise AgentError(DELEGATE_FAILED, "%s cannot disable XNNPACK" % runtime.name, "use --delegate xnnpack")
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    else:
        library = "libedgetpu.so.1" if delegate == "edgetpu" else delegate
        load_delegate = getattr(module, "load_delegate", None) or getattr(
            getattr(module, "experimental", None), "load_delegate", None
        )
        try:
            kwargs["experimental_delegates"] = [load_delegate(library, delegate_options or {})]
        except Exception as exc:  # noqa: BLE001
            raise AgentError(
                DELEGATE_FAILED,
                "cannot load delegate %s: %s" % (library, str(exc).strip().splitlines()[0] if str(exc) else exc),
                "install the delegate library on the board or pass its full path",
            )
    try:
        interpreter = module.Interpreter(**kwargs)
        interpreter.allocate_tensors()
    except Exception as exc:  # noqa: BLE001 - every runtime raises its own types
        raise classify_load_error(exc, runtime, model_path)
    return interpreter
