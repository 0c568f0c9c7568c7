"""Which LiteRT / TFLite runtime releases can load a model: builtin operator versions per release.

A runtime loads a model only if its ``BuiltinOpResolver`` registers every (operator, version) the model uses;
otherwise the interpreter fails with "Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'". The
tables (``op_versions.json``) were not copied from documentation: they were measured by loading probe models in the
real runtimes (``python -m edgeprof.tflite.compat probe``). Each probe model declares one operator code at one
version and has no operators; the interpreter resolves every declared operator code while it is built, so a release
that lacks that version refuses the probe with exactly the error a real model gets. :data:`PROVENANCE` says where
each table came from.

Custom operators are not builtins, with one exception a runtime can vouch for: the XNNPACK delegate implements
MediaPipe's ``Convolution2DTransposeBias``, ``MaxPoolingWithArgmax2D`` and ``MaxUnpooling2D`` itself, so a runtime that
applies XNNPACK by default runs models with them (MediaPipe's selfie segmentation) and fails them with XNNPACK off
("Encountered unresolved custom op"). The probe measures that too: one small model per such op, loaded and run with
the default delegates and without them; ``xnnpack_custom_ops`` in the table lists the ops each release's XNNPACK gave.

Regenerate or extend with one throwaway venv per release (tflite-runtime needs ``numpy<2``)::

    python -m edgeprof.tflite.compat probe --python /tmp/venv/bin/python --family tflite-runtime -o r.json
    python -m edgeprof.tflite.compat render r1.json r2.json ...   # merged into op_versions.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EdgeprofError
from .reader import OpCode, TFLiteModel

FAMILIES = ("litert", "tflite-runtime", "tensorflow")
_PACKAGES = {"litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime", "tensorflow": "tensorflow"}
_ALIASES = {
    "litert": "litert",
    "ai-edge-litert": "litert",
    "ai_edge_litert": "litert",
    "tflite-runtime": "tflite-runtime",
    "tflite_runtime": "tflite-runtime",
    "tensorflow": "tensorflow",
    "tf": "tensorflow",
    "tensorflow.lite": "tensorflow",
    "tf.lite": "tensorflow",
}


class UnknownRuntimeError(EdgeprofError):
    """A runtime name cannot be understood, or edgeprof has no operator table for that release."""


@dataclass(frozen=True)
class RuntimeSpec:
    """A runtime release a board may use: ``family`` is litert, tflite-runtime or tensorflow."""

    family: str
    version: str

    def __str__(self) -> str:
        return f"{self.family}-{self.version}"

    @property
    def package(self) -> str:
        """The pip package that provides this runtime."""
        return _PACKAGES[self.family]

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return _version_tuple(self.version)

    @property
    def known(self) -> bool:
        """Whether edgeprof has a measured operator table for exactly this release."""
        return str(self) in _MEASURED


@dataclass(frozen=True)
class OpIssue:
    """An operator version a runtime lacks; ``max_version`` is the newest it has (None: it lacks the operator)."""

    opcode: OpCode
    max_version: int | None
    reason: str


# Custom ops that LiteRT's XNNPACK delegate implements (tensorflow/lite/delegates/xnnpack): probed per release.
XNNPACK_CUSTOM_OPS = ("Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D")


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


# --- measured tables ---------------------------------------------------------------------------------------------

# op_versions.json, written by `python -m edgeprof.tflite.compat render`: per release, where its table came from and
# the [min, max] version of every builtin operator its BuiltinOpResolver registers.
_MEASURED: dict[str, dict] = json.loads(Path(__file__).with_name("op_versions.json").read_text())

PROVENANCE: dict[str, str] = {release: entry["provenance"] for release, entry in _MEASURED.items()}

# op name -> {release: (min_version, max_version)}
_TABLE: dict[str, dict[str, tuple[int, int]]] = {}
for _release, _entry in _MEASURED.items():
    for _name, (_low, _high) in _entry["ops"].items():
        _TABLE.setdefault(_name, {})[_release] = (int(_low), int(_high))


def _split_key(key: str) -> RuntimeSpec:
    for family in sorted(FAMILIES, key=len, reverse=True):
        if key.startswith(family + "-"):
            return RuntimeSpec(family, key[len(family) + 1 :])
    raise ValueError(key)


KNOWN_RUNTIMES: tuple[RuntimeSpec, ...] = tuple(
    sorted((_split_key(k) for k in _MEASURED), key=lambda r: (FAMILIES.index(r.family), r.version_tuple))
)


def _known_text() -> str:
    return ", ".join(str(r) for r in KNOWN_RUNTIMES)


def parse_runtime(text: str) -> RuntimeSpec:
    """``litert-2.3``, ``tflite-runtime-2.14``, ``tensorflow-2.21.0``, ``ai-edge-litert==2.1`` or just ``litert``.

    A partial version resolves to the oldest known release that matches it (the cautious choice when patch
    releases differ); no version means the newest known release of the family. A version edgeprof has no table
    for is returned as given, and :func:`unsupported_ops` refuses it.
    """
    raw = text.strip()
    match = re.fullmatch(r"(?P<family>[A-Za-z_.\-]+?)(?:\s*(?:==|-|_|\s)\s*v?(?P<version>\d+(?:\.\d+)*))?", raw)
    family = _ALIASES.get(match.group("family").lower()) if match else None
    if match is None or family is None:
        raise UnknownRuntimeError(
            f"unknown runtime {text!r}",
            "name one as FAMILY-VERSION, e.g. litert-2.3, tflite-runtime-2.14 or tensorflow-2.21",
        )
    releases = [r for r in KNOWN_RUNTIMES if r.family == family]
    version = match.group("version")
    if version is None:
        if not releases:
            raise UnknownRuntimeError(f"no known release of {family}", f"known: {_known_text()}")
        return releases[-1]
    wanted = _version_tuple(version)
    matching = [r for r in releases if r.version_tuple[: len(wanted)] == wanted]
    return matching[0] if matching else RuntimeSpec(family, version)


def _spec(runtime: RuntimeSpec | str) -> RuntimeSpec:
    spec = parse_runtime(runtime) if isinstance(runtime, str) else runtime
    if not spec.known:
        raise UnknownRuntimeError(
            f"edgeprof has no operator table for {spec}",
            f"pick the nearest older known release ({_known_text()}) or probe it with "
            "'python -m edgeprof.tflite.compat probe'",
        )
    return spec


def supported_versions(op: str, runtime: RuntimeSpec | str) -> tuple[int, int] | None:
    """(min, max) versions of builtin ``op`` that ``runtime`` registers; None if none."""
    return _TABLE.get(op, {}).get(str(_spec(runtime)))


def xnnpack_custom_ops(runtime: RuntimeSpec | str) -> tuple[str, ...]:
    """The custom ops ``runtime``'s default XNNPACK delegate was measured to provide (empty: none, or not probed)."""
    return tuple(_MEASURED[str(_spec(runtime))].get("xnnpack_custom_ops", ()))


def needs_xnnpack(model: TFLiteModel, runtime: RuntimeSpec | str) -> list[str]:
    """The custom ops of ``model`` that only ``runtime``'s XNNPACK delegate provides: it loads the model with XNNPACK
    on (the default) and fails it with ``--delegate none``."""
    provided = set(xnnpack_custom_ops(runtime))
    return sorted({code.name for code in model.opcodes if code.custom and code.name in provided})


def unsupported_ops(model: TFLiteModel, runtime: RuntimeSpec | str) -> list[OpIssue]:
    """The operator codes of ``model`` that ``runtime`` cannot load with its default delegates (empty: it loads).

    Custom ops the runtime's XNNPACK delegate provides are not issues here; :func:`needs_xnnpack` names them.
    """
    spec = _spec(runtime)
    key = str(spec)
    label = f"{spec.family} {spec.version}"
    provided = set(xnnpack_custom_ops(spec))
    issues: list[OpIssue] = []
    seen: set[OpCode] = set()
    for code in model.opcodes:
        if code in seen:
            continue
        seen.add(code)
        if code.custom and code.name in provided:
            continue
        if code.custom:
            # Interpreters resolve custom operators only when they run, so no probe can tell; say so.
            issues.append(
                OpIssue(code, None, f"custom op {code.name} is not a builtin of {label}; the board must register it")
            )
            continue
        span = _TABLE.get(code.name, {}).get(key)
        if span is None:
            issues.append(OpIssue(code, None, f"{code.name} is not an operator of {label}"))
        elif code.version > span[1]:
            issues.append(
                OpIssue(code, span[1], f"{code.name} v{code.version} is newer than {label} has (up to v{span[1]})")
            )
        elif code.version < span[0]:
            issues.append(
                OpIssue(code, span[1], f"{code.name} v{code.version} is older than {label} accepts (v{span[0]}+)")
            )
    return issues


def loads(model: TFLiteModel, runtime: RuntimeSpec | str) -> bool:
    return not unsupported_ops(model, runtime)


def oldest_loaders(model: TFLiteModel) -> dict[str, str | None]:
    """Per family, the oldest known release whose builtin resolver has every operator version ``model`` uses."""
    result: dict[str, str | None] = {}
    for family in FAMILIES:
        result[family] = next(
            (r.version for r in KNOWN_RUNTIMES if r.family == family and not unsupported_ops(model, r)), None
        )
    return result


# --- probing real runtimes ---------------------------------------------------------------------------------------

_PROBE_VERSIONS = range(1, 25)

# Runs inside the runtime's own venv: Python 3.8 syntax, standard library + the runtime.
_RUNNER = r"""
import json, os, sys
family, folder = sys.argv[1], sys.argv[2]
if family == "litert":
    from ai_edge_litert.interpreter import Interpreter
    package = "ai-edge-litert"
elif family == "tflite-runtime":
    from tflite_runtime.interpreter import Interpreter
    package = "tflite-runtime"
else:
    import tensorflow as tf
    Interpreter = tf.lite.Interpreter
    package = "tensorflow"
from importlib.metadata import version
import numpy as np
ok, failed = [], {}
for name in sorted(os.listdir(folder)):
    if not name.endswith(".tflite"):
        continue
    try:
        Interpreter(model_path=os.path.join(folder, name))
        ok.append(name)
    except Exception as exc:
        failed[name] = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
module = sys.modules[Interpreter.__module__]
resolvers = getattr(module, "OpResolverType", None)
custom = {}
custom_folder = os.path.join(folder, "xnnpack")
for name in sorted(os.listdir(custom_folder)) if os.path.isdir(custom_folder) else []:
    runs = {}
    for mode in ("default", "without_default_delegates"):
        kwargs = {"model_path": os.path.join(custom_folder, name)}
        if mode != "default":
            if resolvers is None:
                runs[mode] = "no OpResolverType"
                continue
            kwargs["experimental_op_resolver_type"] = resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            interpreter = Interpreter(**kwargs)
            interpreter.allocate_tensors()
            for detail in interpreter.get_input_details():
                interpreter.set_tensor(detail["index"], np.ones(detail["shape"], detail["dtype"]))
            interpreter.invoke()
            runs[mode] = "ok"
        except Exception as exc:
            runs[mode] = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    custom[name[: -len(".tflite")]] = runs
json.dump({"family": family, "version": version(package), "python": sys.version.split()[0],
           "ok": ok, "failed": failed, "xnnpack_custom": custom}, sys.stdout)
"""


def _probe_model(schema: object, builtin: int, version: int, custom: str | None = None) -> bytes:
    import flatbuffers

    s = schema
    model = s.ModelT()  # type: ignore[attr-defined]
    model.version = 3
    model.description = "edgeprof runtime probe"
    model.operatorCodes = []
    if builtin >= 0:
        code = s.OperatorCodeT()  # type: ignore[attr-defined]
        code.builtinCode = builtin
        code.deprecatedBuiltinCode = min(builtin, 127)  # 127: PLACEHOLDER_FOR_GREATER_OP_CODES
        code.version = version
        if custom:
            code.customCode = custom
        model.operatorCodes = [code]
    tensor = s.TensorT()  # type: ignore[attr-defined]
    tensor.shape = [1]
    tensor.type = s.TensorType.FLOAT32  # type: ignore[attr-defined]
    tensor.buffer = 0
    tensor.name = "x"
    subgraph = s.SubGraphT()  # type: ignore[attr-defined]
    subgraph.tensors, subgraph.inputs, subgraph.outputs, subgraph.operators = [tensor], [0], [0], []
    model.subgraphs = [subgraph]
    model.buffers = [s.BufferT()]  # type: ignore[attr-defined]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _xnnpack_probe(schema: Any, op: str) -> bytes:
    """A float32 model with one ``op`` node of the shapes MediaPipe uses, which XNNPACK takes when it provides ``op``.

    Their options are raw C structs, as MediaPipe writes them: TfLitePoolParams (padding VALID, stride 2x2, filter
    2x2) and TfLiteTransposeConvParams (padding VALID, stride 2x2).
    """
    import struct

    import flatbuffers
    import numpy as np

    s = schema
    names = [op] if op != "MaxUnpooling2D" else ["MaxPoolingWithArgmax2D", op]  # unpooling needs argmax's indices
    model = s.ModelT()
    model.version = 3
    model.description = "edgeprof XNNPACK custom op probe"
    model.operatorCodes = []
    for name in names:
        code = s.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.CUSTOM
        code.customCode, code.version = name, 1
        model.operatorCodes.append(code)
    model.buffers = [s.BufferT()]

    def tensor(name: str, shape: list[int], data: np.ndarray | None = None) -> Any:
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, s.TensorType.FLOAT32, 0
        if data is not None:
            buffer = s.BufferT()
            buffer.data = list(data.astype(np.float32).tobytes())
            model.buffers.append(buffer)
            t.buffer = len(model.buffers) - 1
        return t

    def node(index: int, inputs: list[int], outputs: list[int], options: bytes) -> Any:
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs, o.customOptions = index, inputs, outputs, list(options)
        return o

    graph = s.SubGraphT()
    pool = struct.pack("<10i", 2, 2, 2, 2, 2, 0, 0, 0, 0, 0)
    if op == "Convolution2DTransposeBias":
        graph.tensors = [
            tensor("x", [1, 4, 4, 2]),
            tensor("w", [3, 2, 2, 2], np.ones(24)),
            tensor("b", [3], np.zeros(3)),
            tensor("y", [1, 8, 8, 3]),
        ]
        graph.operators = [node(0, [0, 1, 2], [3], struct.pack("<3i", 2, 2, 2))]
        graph.outputs = [3]
    else:
        graph.tensors = [tensor("x", [1, 4, 4, 2]), tensor("pooled", [1, 2, 2, 2]), tensor("argmax", [1, 2, 2, 2])]
        graph.operators = [node(0, [0], [1, 2], pool)]
        graph.outputs = [1, 2]
        if op == "MaxUnpooling2D":
            graph.tensors.append(tensor("y", [1, 4, 4, 2]))
            graph.operators.append(node(1, [1, 2], [3], pool))
            graph.outputs = [3]
    graph.inputs = [0]
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def write_probe_models(folder: Path) -> int:
    """One tiny model per (operator, version) in ``folder``, named ``OP.vN.tflite``; a ``_control`` with none; and
    ``xnnpack/OP.tflite``, one per custom op XNNPACK may provide."""
    from ai_edge_litert import schema_py_generated as schema

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "xnnpack").mkdir(exist_ok=True)
    for op in XNNPACK_CUSTOM_OPS:
        (folder / "xnnpack" / f"{op}.tflite").write_bytes(_xnnpack_probe(schema, op))
    ops = {n: v for n, v in vars(schema.BuiltinOperator).items() if not n.startswith("_") and isinstance(v, int)}
    count = 0
    (folder / "_control.tflite").write_bytes(_probe_model(schema, -1, 1))
    for name, code in ops.items():
        if name in ("CUSTOM", "PLACEHOLDER_FOR_GREATER_OP_CODES", "DELEGATE"):
            continue
        for version in _PROBE_VERSIONS:
            (folder / f"{name}.v{version}.tflite").write_bytes(_probe_model(schema, code, version))
            count += 1
    return count


def probe(python: str, family: str) -> dict:
    """Load every probe model with the runtime of ``family`` installed for ``python``; what loaded and what not."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "models"
        write_probe_models(folder)
        done = subprocess.run(
            [python, "-c", _RUNNER, family, str(folder)], capture_output=True, text=True, timeout=1800, check=False
        )
    if done.returncode != 0:
        raise EdgeprofError(f"the probe failed in {python}: {done.stderr.strip()[-500:]}", "check the runtime's venv")
    result = json.loads(done.stdout)
    if "_control.tflite" not in result["ok"]:
        raise EdgeprofError(
            f"{family} {result['version']} cannot load even the empty control model: "
            f"{result['failed'].get('_control.tflite')}",
            "check the runtime's installation",
        )
    return result


def render(results: list[dict], provenance: str = "probed") -> dict[str, dict]:
    """Table entries for probe results (contiguous version ranges, as AddBuiltin registers them)."""
    entries: dict[str, dict] = {}
    for result in results:
        versions: dict[str, list[int]] = {}
        for name in result["ok"]:
            if name.startswith("_"):
                continue
            op, _, rest = name.removesuffix(".tflite").rpartition(".v")
            versions.setdefault(op, []).append(int(rest))
        ops = {}
        for op in sorted(versions):
            found = sorted(versions[op])
            if found != list(range(found[0], found[-1] + 1)):
                raise ValueError(f"{op}: non-contiguous versions {found} in {result['family']} {result['version']}")
            if found[-1] == _PROBE_VERSIONS[-1]:
                raise ValueError(f"{op}: loads up to the last probed version; probe further")
            ops[op] = [found[0], found[-1]]
        package = _PACKAGES[result["family"]]
        entries[f"{result['family']}-{result['version']}"] = {
            "provenance": f"{package} {result['version']}, {provenance}",
            "ops": ops,
            "xnnpack_custom_ops": xnnpack_provided(result),
        }
    return entries


def xnnpack_provided(result: dict) -> list[str]:
    """Custom ops a probe ran with the default delegates and could not run without them: XNNPACK's own."""
    runs = result.get("xnnpack_custom", {})
    return sorted(op for op, r in runs.items() if r.get("default") == "ok" != r.get("without_default_delegates"))


def write_table(entries: dict[str, dict], path: Path) -> None:
    """Merge ``entries`` into the JSON table at ``path``, one operator a line so that diffs stay readable."""
    table = {**(json.loads(path.read_text()) if path.exists() else {}), **entries}
    lines = ["{"]
    for i, (release, entry) in enumerate(table.items()):
        ops = [f'      "{op}": [{low}, {high}]' for op, (low, high) in entry["ops"].items()]
        xnnpack = (
            [f'    "xnnpack_custom_ops": {json.dumps(entry["xnnpack_custom_ops"])},']
            if ("xnnpack_custom_ops" in entry)
            else []
        )
        lines += [f'  "{release}": {{', f'    "provenance": {json.dumps(entry["provenance"])},', *xnnpack,
                  '    "ops": {', ",\n".join(ops), "    }", "  }" + ("," if i < len(table) - 1 else "")]  # fmt: skip
    path.write_text("\n".join([*lines, "}"]) + "\n")


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgeprof.tflite.compat")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("probe", help="probe a runtime installed for another Python")
    p.add_argument("--python", required=True)
    p.add_argument("--family", required=True, choices=FAMILIES)
    p.add_argument("-o", "--out", required=True)
    r = sub.add_parser("render", help="merge probe results into the operator table (op_versions.json)")
    r.add_argument("results", nargs="+")
    r.add_argument("--provenance", default="probed", help="how the runtime was installed, e.g. 'cp311 wheel, probed'")
    r.add_argument("--table", type=Path, default=Path(__file__).with_name("op_versions.json"))
    args = parser.parse_args(argv)
    if args.command == "probe":
        result = probe(args.python, args.family)
        Path(args.out).write_text(json.dumps(result))
        print(f"{args.family} {result['version']}: {len(result['ok']) - 1} op versions load", file=sys.stderr)
    else:
        entries = render([json.loads(Path(f).read_text()) for f in args.results], args.provenance)
        write_table(entries, args.table)
        print(f"{', '.join(entries)} written to {args.table}", file=sys.stderr)


if __name__ == "__main__":
    _main()
