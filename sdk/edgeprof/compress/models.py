"""Loading Keras models for TF-MOT, and copying them so the user's model is never changed.

TF-MOT wraps the layer objects of the model it is given: after ``cluster_weights`` the original model had lost
weights. Every step therefore works on :func:`clone`, a structural copy with copied weights.

Custom layers (and activations, initializers...) need their code: Keras stores only their class names. They come
from ``custom_objects`` (``--custom-objects module:attr``), or from the model object itself when the user passes one.
They stay registered (a Keras custom-object scope) for the whole compression, because every step that rebuilds a
model from its config (low-rank, pca, autoencoder, QAT) needs them again.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib
import importlib.util
import inspect
import json
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _tf
from ..errors import ModelError
from . import keras3

# What ``compress(custom_objects=...)`` takes: Keras' own dict (name → class or function), or a list of
# ``"module:attr"`` specs and objects (a class or function is registered under its own name).
CustomObjects = Mapping[str, Any] | Sequence[Any] | str | None

FLAG_FIX = (
    "pass --custom-objects module:attr (a module in the current folder or beside the model), or from Python load the "
    "model yourself and pass the model object: edgeprof.compress(model, ...)"
)


@dataclass
class _Active:
    objects: dict[str, Any] = field(default_factory=dict)
    described: list[dict[str, Any]] = field(default_factory=list)


_ACTIVE: contextvars.ContextVar[_Active | None] = contextvars.ContextVar("edgeprof_custom_objects", default=None)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path)).encode() if path.is_dir() else b"")
        digest.update(file.read_bytes())
    return digest.hexdigest()


def check_supported(model: Any) -> None:
    """TF-MOT handles Sequential and Functional models only."""
    keras = _tf.keras()
    if isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False):
        return
    raise ModelError(
        f"{type(model).__name__} is a subclassed Keras model, which TF-MOT cannot compress",
        "rebuild it as a Sequential or Functional model",
    )


# --- custom objects ---------------------------------------------------------------------------------------------


def _import(module_spec: str, search: list[Path], spec: str) -> Any:
    """A module by dotted name (looked for in ``search`` first, then on sys.path) or by the path of its .py file."""
    path = Path(module_spec)
    if module_spec.endswith(".py") or "/" in module_spec:
        if not path.is_file():
            raise ModelError(f"custom objects {spec}: {path} does not exist", "give the path of the .py file")
        name, search = path.stem, [path.resolve().parent]
        loaded = sys.modules.get(name)
        if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() != path.resolve():
            sys.modules.pop(name)  # another module of that name: load the one asked for
        module_spec = name
    added = [str(p) for p in search if str(p) not in sys.path]
    sys.path[:0] = added
    try:
        return importlib.import_module(module_spec)
    except ModuleNotFoundError as exc:
        top = module_spec.split(".")[0]
        if exc.name and top == exc.name.split(".")[0]:
            where = ", ".join(str(p) for p in search)
            attr = spec.rpartition(":")[2] if ":" in spec else "attr"
            raise ModelError(
                f"custom objects {spec}: no module {module_spec!r} in {where} or on the Python path",
                f"run edgeprof from the folder that holds {top}.py, put it beside the model, "
                f"or give its path: path/to/{top}.py:{attr}",
            ) from None
        raise ModelError(
            f"custom objects {spec}: importing {module_spec} failed ({exc})", "install what the module imports"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the user's module may raise anything at import
        raise ModelError(
            f"custom objects {spec}: importing {module_spec} failed ({type(exc).__name__}: {exc})",
            "fix the module so that it imports",
        ) from None
    finally:
        for entry in added:
            if entry in sys.path:
                sys.path.remove(entry)


def _check_tf_keras(name: str, obj: Any, spec: str) -> None:
    """A class written for Keras 3 (``import keras``) cannot live in a tf_keras model."""
    if not inspect.isclass(obj):
        return
    modules = [c.__module__ for c in obj.__mro__]
    if any(m.startswith("keras.") or m == "keras" for m in modules) and not any(
        m.startswith("tf_keras") for m in modules
    ):
        raise ModelError(
            f"custom objects {spec}: {name} is a Keras 3 class (its module was imported before tf_keras was set up); "
            "TF-MOT needs tf_keras (Keras 2)",
            "pass it as 'module:attr' so that edgeprof imports it, or set TF_USE_LEGACY_KERAS=1 before TensorFlow is "
            "imported",
        )


def _named(obj: Any, spec: str) -> dict[str, Any]:
    keras = _tf.keras()
    if isinstance(obj, Mapping):
        bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not callable(v)]
        if bad:
            raise ModelError(
                f"custom objects {spec}: the dict maps {', '.join(bad[:3])} to something that is not a class or "
                "function",
                "map each name to the class or function",
            )
        return dict(obj)
    if not callable(obj):
        raise ModelError(
            f"custom objects {spec} is a {type(obj).__name__}, not a dict, a class or a function",
            "point at a dict of name → class, a function returning one, or a class",
        )
    if inspect.isfunction(obj):
        required = [
            p
            for p in inspect.signature(obj).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if not required:  # a factory: returns the dict
            try:
                made = obj()
            except Exception as exc:  # noqa: BLE001 - the user's function may raise anything
                raise ModelError(
                    f"custom objects {spec}() failed ({type(exc).__name__}: {exc})", "fix the function"
                ) from None
            if not isinstance(made, Mapping):
                raise ModelError(
                    f"custom objects {spec}() returned {type(made).__name__}, not a dict", "return {name: class}"
                )
            return _named(made, f"{spec}()")
    names = {getattr(obj, "__name__", str(obj))}
    with contextlib.suppress(Exception):
        names.add(keras.utils.get_registered_name(obj))
    return {name: obj for name in names}


def _module_classes(module: Any) -> list[str]:
    keras = _tf.keras()
    return sorted(
        name
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, keras.layers.Layer) and value.__module__ == module.__name__
    )


def resolve_custom_objects(
    custom_objects: CustomObjects, *, model_path: Path | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """name → object, and what was loaded from where (for the manifest).

    A ``"module:attr"`` module is looked for in the current folder, then in the model's folder, then on sys.path;
    ``path/to/file.py:attr`` names the file itself.
    """
    _tf.keras()  # first: the user's module may `import tensorflow as tf; tf.keras`, which must be tf_keras
    if custom_objects is None:
        return {}, []
    if isinstance(custom_objects, Mapping):
        objects = _named(custom_objects, "custom_objects")
        for name, obj in objects.items():
            _check_tf_keras(name, obj, "custom_objects")
        return objects, [{"names": sorted(objects), "from": "custom_objects"}]
    items = [custom_objects] if isinstance(custom_objects, str) else list(custom_objects)
    search = [Path.cwd()] + ([model_path.resolve().parent] if model_path is not None else [])
    objects: dict[str, Any] = {}
    described: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, str):
            found = _named(item, repr(item))
            described.append({"names": sorted(found), "from": "object"})
        else:
            module_spec, sep, attr = item.rpartition(":")
            if not sep or not module_spec or not attr:
                module = _import(item, search, item) if not sep else None
                layers = _module_classes(module) if module is not None else []
                example = f"{item}:{layers[0]}" if layers else "my_layers:MyLayer"
                raise ModelError(
                    f"custom objects {item!r} is not module:attr",
                    f"name what to load, e.g. {example}" + (f" (its layers: {', '.join(layers)})" if layers else ""),
                )
            module = _import(module_spec, search, item)
            if not hasattr(module, attr):
                layers = _module_classes(module)
                raise ModelError(
                    f"custom objects {item}: {module_spec} has no {attr!r}",
                    "name a dict, a function returning one, or a class"
                    + (f"; its layers: {', '.join(layers)}" if layers else ""),
                )
            found = _named(getattr(module, attr), item)
            file = getattr(module, "__file__", None)
            described.append(
                {
                    "spec": item,
                    "names": sorted(found),
                    "module_file": file,
                    "module_sha256": file_sha256(Path(file)) if file and Path(file).is_file() else None,
                }
            )
        for name, obj in found.items():
            _check_tf_keras(name, obj, str(item))
        objects.update(found)
    return objects, described


def _builtin(obj: Any) -> bool:
    module = getattr(obj, "__module__", "") or ""
    return module.split(".")[0] in ("tf_keras", "keras", "tensorflow", "tensorflow_model_optimization", "builtins")


def classes_of(model: Any) -> dict[str, Any]:
    """The custom classes and functions a model object uses, so a rebuild from its config finds them."""
    keras = _tf.keras()
    kinds = (keras.initializers.Initializer, keras.regularizers.Regularizer, keras.constraints.Constraint)
    found: dict[str, Any] = {}

    def add(obj: Any) -> None:
        if _builtin(obj):
            return
        found[getattr(obj, "__name__", "")] = obj
        with contextlib.suppress(Exception):
            found[keras.utils.get_registered_name(obj)] = obj

    def visit(layer: Any) -> None:
        if not _builtin(type(layer)) and not isinstance(layer, keras.Model):
            add(type(layer))
        for value in vars(layer).values():
            if isinstance(value, kinds):
                add(type(value))
            elif inspect.isfunction(value) and getattr(layer, "activation", None) is value:
                add(value)
        for inner in getattr(layer, "layers", []) if isinstance(layer, keras.Model) else []:
            visit(inner)

    for layer in model.layers:
        visit(layer)
    found.pop("", None)
    return found


@contextlib.contextmanager
def custom_object_scope(model: Any, custom_objects: CustomObjects = None) -> Iterator[dict[str, Any]]:
    """Register the custom objects for a whole compression (loading, rebuilding, TF-MOT's own clones)."""
    keras = _tf.keras()
    model_path = Path(model) if isinstance(model, (str, Path)) else None
    objects, described = resolve_custom_objects(custom_objects, model_path=model_path)
    if isinstance(model, keras.Model):
        from_model = {k: v for k, v in classes_of(model).items() if k not in objects}
        if from_model:
            described.append({"names": sorted(from_model), "from": "model object"})
        objects = {**from_model, **objects}
    token = _ACTIVE.set(_Active(objects, described))
    try:
        with keras.utils.custom_object_scope(objects):
            yield objects
    finally:
        _ACTIVE.reset(token)


# --- loading ----------------------------------------------------------------------------------------------------

_UNKNOWN = re.compile(r"Unknown ([a-z][a-z ]*?): '?([^'\s]+?)'?(?:\.\s|\.?$|\s)")


def _lambda_layers(path: Path) -> list[str]:
    """Names of the Lambda layers stored as Python bytecode in a legacy .h5 file (best effort)."""
    try:
        import h5py

        with h5py.File(path, "r") as h5:
            config = json.loads(h5.attrs["model_config"])
    except Exception:  # noqa: BLE001 - only used to word the error better
        return []
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda" and node.get("config", {}).get("function_type") == "lambda":
                names.append(str(node["config"].get("name")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return names


def _load_error(path: Path, exc: Exception) -> ModelError:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    active = _ACTIVE.get()
    unknown = _UNKNOWN.search(first)
    if unknown:
        kind, name = unknown.group(1), unknown.group(2)
        given = ""
        if active is not None and active.objects:
            given = f", which the custom objects given ({', '.join(sorted(active.objects))}) do not define"
        return ModelError(f"{path} uses the custom {kind} {name!r}{given}, whose code edgeprof needs", FLAG_FIX)
    if "bad marshal data" in first or "marshal" in type(exc).__name__.lower():
        names = _lambda_layers(path)
        which = f"Lambda layer {', '.join(repr(n) for n in names)}" if names else "a Lambda layer"
        return ModelError(
            f"{path}: {which} holds Python bytecode saved by another Python version, which this Python cannot load "
            "(bad marshal data)",
            "rebuild the model in Python with the Lambda's function, load the weights with "
            "model.load_weights(file) and pass the model object to edgeprof.compress(), or re-save the model "
            "from this Python version",
        )
    if active is not None and active.objects:
        return ModelError(
            f"cannot load {path} with the custom objects given ({first[:200]})",
            "check that each custom class's get_config() holds what its __init__ takes",
        )
    return ModelError(
        f"cannot load {path} as a Keras model ({first[:200]})", "pass a Keras .keras, .h5 or SavedModel directory"
    )


def load_model(source: Any) -> tuple[Any, dict[str, Any]]:
    """A tf_keras model and a description of where it came from (path and SHA-256, and the custom objects used)."""
    keras = _tf.keras()
    active = _ACTIVE.get()
    custom = {"custom_objects": active.described} if active is not None and active.described else {}
    if isinstance(source, keras.Model):
        check_supported(source)
        digest = hashlib.sha256()
        for weight in source.get_weights():
            digest.update(weight.tobytes())
        return source, {"path": None, "sha256": digest.hexdigest(), "kind": "in-memory", **custom}
    if not isinstance(source, (str, Path)) and type(source).__module__.startswith("keras"):
        raise ModelError(
            f"{type(source).__name__} is a Keras 3 model; TF-MOT needs tf_keras (Keras 2)",
            "save it as .keras and pass the file, or build it with tf_keras",
        )
    path = Path(source)
    if not path.exists():
        raise ModelError(f"model {path} does not exist", "check the path")
    if path.suffix == ".tflite":
        raise ModelError(
            f"{path} is already a TFLite model; compress needs the Keras model it came from",
            "pass the .keras, .h5 or SavedModel of the model",
        )
    if keras3.is_keras3_archive(path):
        model = keras3.load(path)
        check_supported(model)
        return model, {"path": str(path), "sha256": file_sha256(path), "kind": "keras3", **keras3.describe(path)}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*a Lambda layer uses it")
            model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for unreadable files
        raise _load_error(path, exc) from None
    check_supported(model)
    kind = "savedmodel" if path.is_dir() else path.suffix.lstrip(".")
    return model, {"path": str(path), "sha256": file_sha256(path), "kind": kind, **custom}


def clone(model: Any) -> Any:
    """A new model with the same architecture and copies of the weights."""
    keras = _tf.keras()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
