"""Latency per operator, measured on the board with the runtime, delegate and threads the model runs with.

LiteRT's Python interpreter has no op profiler, so each operator of the main subgraph is cut out of the model
(cut.py: its real tensors, shapes, quantisation and options) and run as a model of its own. The method, and its
bias (the figures themselves: opstats.py):

* Inputs: each sub-model is fed the activations the whole model computes from the profile's input (read from an
  interpreter on builtin kernels that keeps every tensor), so data-dependent operators (GATHER indices, computed
  shapes, dynamic sizes) see what they see in the model. Where the builtin kernels cannot run the model (custom ops
  only XNNPACK provides), the inputs are random and the result says so.
* Rounds: in each round every sub-model runs in the model's execution order, beside the whole model, an empty
  sub-model (no operator: what one ``invoke()`` costs by itself, the timer included) and a one-Dense-layer probe
  through the delegate (what one delegate node costs by itself): once right after the other units ran (*cold*),
  then twice more (*warm*: its own weights and input are in cache). Interleaving spreads drift and other load over
  every unit alike. An operator's figure is its warm median, less the empty invoke and, on a delegate, one node.
* The bias: alone, an operator finds its weights and input in cache and shares no delegate node with others. Where
  the whole model's working set stays in cache between inferences the operators add up to the model within a few
  percent; where it does not (weights streaming in on every inference), they add up to less. Every result reports
  that sum against the whole model, measured in the same rounds, and the ranking's stability.
* Where the execution plan has several nodes (a delegate took part of the graph), each delegate node is also cut
  and timed as one piece, so its time can be set against the sum of the operators it covers.
* Not timed on their own: the weight expansions (DEQUANTIZE of float16, DENSIFY of sparse constants) and VAR_HANDLE
  / CALL_ONCE run inside the cut of the operator that reads what they make; a sub-model the runtime refuses to load
  or run is reported with the runtime's reason. Operators of other subgraphs (bodies of WHILE, IF) are timed inside
  the operator that calls them.
* Bounds: loading stops at 70 % of the time left (the operators not reached are "not measured"); rounds stop at the
  deadline once three are done, or after ``ops_rounds`` rounds and ``min_seconds``.

Python 3.8, numpy and the board's LiteRT runtime.
"""

import os
import shutil
import tempfile
import time

import numpy as np

from . import cut as cut_mod
from . import flatbuffer as fb
from . import graph as graph_mod
from . import memory, opstats, probe, runtimes
from .protocol import AgentError

METHOD = "isolated"
METHOD_TEXT = (
    "each operator cut out of the model with its real tensors and run alone through the same runtime, delegate and "
    "threads, fed the model's own activations; in rounds, in execution order, interleaved with the whole model, an "
    "empty sub-model and a one-node probe; an operator's figure is the median of the two invokes right after its "
    "first one in a round, less an empty invoke and, on a delegate, one delegate node"
)
LOAD_SHARE = 0.7  # loading the sub-models may take this share of the time bound; the rest is left for the rounds
MIN_ROUNDS = 3
TICK_S = 0.5
REPEATS = 2  # invokes of a unit right after its first one in a round; their median is the figure
BASE_EVERY = 8  # the empty sub-model and the probe run again after every this many units


class Unit(object):
    """One thing timed in every round: an operator's cut, a delegate node's cut, the baselines or the whole model."""

    def __init__(self, kind, key, interpreter=None, invoke=None):
        self.kind = kind  # "op", "node", "empty", "dispatch", "whole"
        self.key = key
        self.interpreter = interpreter
        self.invoke = invoke or (interpreter.invoke if interpreter is not None else None)
        self.first = []  # the first invoke after the other units ran: caches hold what they left
        self.samples = []  # the invokes right after it: the unit's own weights and tensors are in cache
        self.delegated = _delegated(interpreter) if interpreter is not None else None


# -- sub-models -----------------------------------------------------------------------------------------------------


def _reference(runtime, model_path, tensors, threads):
    """An interpreter holding every activation of the whole model for the profile's input, or (None, why)."""
    kwargs = {"model_path": model_path, "experimental_preserve_all_tensors": True}
    if threads:
        kwargs["num_threads"] = int(threads)
    resolver = runtimes._resolver_type(runtime.module)
    if resolver is not None:
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        with runtimes.StderrTee():
            interpreter = runtime.module.Interpreter(**kwargs)
            interpreter.allocate_tensors()
            for detail, tensor in zip(interpreter.get_input_details(), tensors):
                interpreter.set_tensor(detail["index"], tensor)
            interpreter.invoke()
    except Exception as exc:  # noqa: BLE001 - e.g. custom ops only XNNPACK provides: random inputs then
        return None, "the model does not run on builtin kernels here (%s)" % runtimes._first_line(str(exc))
    return interpreter, None


def _value(reference, tensor_index):
    if reference is None:
        return None
    try:
        return np.array(reference.get_tensor(tensor_index))
    except Exception:  # noqa: BLE001 - resource tensors and tensors the interpreter did not keep
        return None


def _random_like(detail, rng):
    dtype = np.dtype(detail["dtype"])
    shape = tuple(int(d) for d in detail["shape"])
    if dtype.kind == "f":
        return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.randint(int(info.min), int(info.max) + 1, size=shape, dtype=np.int64).astype(dtype)
    if dtype.kind == "b":
        return rng.randint(0, 2, size=shape).astype(dtype)
    return None


def _feed(interpreter, cut, reference, rng):
    """Set the sub-model's inputs: the model's activations (resized where the model's were), else random ones.
    Returns how many inputs got random values."""
    details = interpreter.get_input_details()
    values = [_value(reference, t) for t in cut.inputs]
    resized = False
    for detail, value in zip(details, values):
        if value is not None and tuple(value.shape) != tuple(int(d) for d in detail["shape"]):
            interpreter.resize_tensor_input(detail["index"], list(value.shape))
            resized = True
    if resized:
        interpreter.allocate_tensors()
        details = interpreter.get_input_details()
    random_inputs = 0
    for detail, value in zip(details, values):
        if value is None:
            value = _random_like(detail, rng)
            random_inputs += 1
            if value is None:
                continue
        interpreter.set_tensor(detail["index"], value.astype(np.dtype(detail["dtype"]), copy=False))
    return random_inputs


def _delegated(interpreter):
    g = graph_mod.read(interpreter)
    if g is None:
        return None
    return bool(g.delegates) and len(g.covered) > 0


def _interpreter(runtime, path, opts):
    return runtimes.make_interpreter(
        runtime, path, threads=opts["threads"], delegate=opts["delegate"], delegate_options=opts["delegate_options"]
    )[0]


def _load(runtime, model, source, cut, path, opts, reference, rng):
    """(interpreter with its inputs set and one invoke done, random inputs), or an AgentError saying why not."""
    try:
        cut_mod.write(model, source, cut, path)
    except (fb.FormatError, OSError) as exc:
        raise AgentError("op_failed", "it cannot be cut out of this file: %s" % exc)
    try:
        interpreter = _interpreter(runtime, path, opts)
    finally:
        cut_mod.remove(path)  # the runtime maps the file: it lives on until the interpreter goes
    try:
        random_inputs = _feed(interpreter, cut, reference, rng)
        interpreter.invoke()
    except Exception as exc:  # noqa: BLE001 - the runtime's own reason is the answer
        raise AgentError("op_failed", "the sub-model fails to run: %s" % runtimes._first_line(str(exc)))
    return interpreter, random_inputs


def _dispatch_unit(runtime, folder, opts):
    """The probe model (one tiny Dense layer) through the delegate: its time over an empty invoke is what one
    delegate node costs by itself (an upper bound: it also does 8 MACs). None without a delegate that takes it."""
    if opts["delegate"] == "none":
        return None
    path = os.path.join(folder, "dispatch.tflite")
    with open(path, "wb") as handle:
        handle.write(probe.model("float32"))
    try:
        interpreter = _interpreter(runtime, path, opts)
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
        interpreter.invoke()
    except Exception:  # noqa: BLE001 - no correction then; the sum check shows what it would have been
        return None
    finally:
        cut_mod.remove(path)
    unit = Unit("dispatch", "dispatch", interpreter)
    return unit if unit.delegated else None


# -- what the model holds -------------------------------------------------------------------------------------------


def _tensor_info(sg, indices):
    return [
        {
            "index": t,
            "name": sg.tensors[t].name,
            "dtype": sg.tensors[t].dtype,
            "shape": list(sg.tensors[t].shape_signature or sg.tensors[t].shape),
            "constant": sg.tensors[t].constant,
        }
        for t in indices
        if t >= 0
    ]


def _op_names(plan_graph, sg):
    names = dict((op["index"], op["op_name"]) for op in plan_graph.originals) if plan_graph is not None else {}
    for op in sg.operators:
        names.setdefault(op.index, op.custom if op.custom else "BUILTIN_%d" % op.code)
    return names


def _rows(sg, plan_graph):
    names = _op_names(plan_graph, sg)
    covered = plan_graph.covered if plan_graph is not None else {}
    rows = []
    for op in sg.operators:
        out = op.outputs[0] if op.outputs and op.outputs[0] >= 0 else None
        row = {
            "index": op.index,
            "op": names[op.index],
            "name": sg.tensors[out].name if out is not None else "",
            "inputs": _tensor_info(sg, op.inputs),
            "outputs": _tensor_info(sg, op.outputs),
            "status": "timed",
            "node": covered.get(op.index, op.index),
            "delegated": (op.index in covered) if plan_graph is not None else None,
        }
        if op.called_subgraphs:
            row["calls_subgraphs"] = op.called_subgraphs
        rows.append(row)
    return rows


def _plan(plan_graph, delegate):
    """The execution plan after delegation: delegate nodes with the operators they cover, and builtin operators."""
    if plan_graph is None:
        return []
    plan = []
    for node in plan_graph.plan():
        if node["op_name"] == graph_mod.DELEGATE:
            ops = sorted(i for i, n in plan_graph.covered.items() if n == node["index"])
            plan.append({"node": node["index"], "kind": "delegate", "delegate": delegate, "ops": ops})
        else:
            plan.append({"node": node["index"], "kind": "builtin", "op": node["op_name"], "ops": [node["index"]]})
    return plan


def _folded(sg):
    """Operators not timed on their own: {index: why}. They run once (weight expansions, variable handles,
    variable initialisation), inside the cut of the operators that read what they make."""
    out = {}
    expanding = cut_mod.expansions(sg)
    for op in sg.operators:
        if op.index in expanding:
            out[op.index] = "expands constant weights once at load; timed with the operator that reads them"
        elif op.code == fb.BUILTIN["VAR_HANDLE"]:
            out[op.index] = "makes a resource variable's handle; timed with the operators that read it"
        elif op.code == fb.BUILTIN["CALL_ONCE"]:
            out[op.index] = "initialises the resource variables on the first invoke only"
    return out


def _wanted(rows, plan, folded):
    """(kind, key, operator indices) of every sub-model to time, in execution order."""
    wanted = []
    for node in plan:
        if len(plan) > 1 and node["kind"] == "delegate" and len(node["ops"]) > 1:
            wanted.append(("node", node["node"], node["ops"]))
        wanted.extend(("op", i, [i]) for i in node["ops"] if i not in folded)
    if not plan:  # a runtime that does not show its plan: the operators in model order
        wanted.extend(("op", r["index"], [r["index"]]) for r in rows if r["index"] not in folded)
    return wanted


def _scratch_dir(model_path):
    """The board's work directory's tmp/ beside models/, else the system's temporary directory."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(model_path))), "tmp")
    return folder if os.path.isdir(folder) and os.access(folder, os.W_OK) else None


# -- the run --------------------------------------------------------------------------------------------------------


class _Run(object):
    def __init__(self, runtime, model_path, opts, emit, deadline):
        self.runtime = runtime
        self.model_path = model_path
        self.opts = opts
        self.emit = emit
        self.started = time.perf_counter()
        self.deadline = deadline
        self.budget = deadline - self.started
        self.stopped = None
        self.problems = []
        self.last_tick = self.started

    def tick(self, **fields):
        now = time.perf_counter()
        if now - self.last_tick >= TICK_S:
            self.emit("progress", phase="ops", seconds=round(now - self.started, 3), **fields)
            self.last_tick = now

    def load(self, model, source, rows, wanted, reference, folder):
        """Load every wanted sub-model until LOAD_SHARE of the time is used; mark the operators on the way."""
        rng = np.random.RandomState(int(self.opts["seed"]))
        load_until = self.started + LOAD_SHARE * self.budget
        units = []
        for number, (kind, key, indices) in enumerate(wanted):
            if time.perf_counter() >= load_until:
                self.stopped = "load"
                for kind_left, key_left, _ops in wanted[number:]:
                    if kind_left == "op":
                        rows[key_left]["status"] = "not_measured"
                        rows[key_left]["reason"] = (
                            "--max-seconds (%g s) ran out while the sub-models loaded" % (self.opts["max_seconds"])
                        )
                break
            self.tick(step="load", done=number, total=len(wanted))
            cut = cut_mod.plan(model, indices)
            path = os.path.join(folder, "%s%d.tflite" % (kind, key))
            try:
                interpreter, random_inputs = _load(self.runtime, model, source, cut, path, self.opts, reference, rng)
            except AgentError as exc:
                if kind == "op":
                    rows[key]["status"] = "not_cut"
                    rows[key]["reason"] = exc.message
                else:
                    self.problems.append("delegate node %d as one piece: %s" % (key, exc.message))
                continue
            unit = Unit(kind, key, interpreter)
            if kind == "op":
                _describe_cut(rows, key, cut, unit, random_inputs)
            units.append(unit)
        return units

    def measure(self, order):
        """Rounds until ``ops_rounds`` and ``min_seconds``, or the deadline once MIN_ROUNDS are done."""
        clock = time.perf_counter
        rounds = 0
        started = clock()
        wanted_rounds = int(self.opts.get("ops_rounds") or 50)
        min_seconds = float(self.opts["min_seconds"])
        while True:
            for unit in order:
                invoke, first, samples = unit.invoke, unit.first, unit.samples
                t0 = clock()
                invoke()
                t1 = clock()
                first.append((t1 - t0) * 1000.0)
                for _ in range(REPEATS):
                    t0 = clock()
                    invoke()
                    t1 = clock()
                    samples.append((t1 - t0) * 1000.0)
            rounds += 1
            now = clock()
            done = rounds >= wanted_rounds and now - started >= min_seconds
            if done:
                break
            if rounds >= MIN_ROUNDS and now >= self.deadline:
                self.stopped = self.stopped or "measure"
                break
            self.tick(step="measure", rounds=rounds)
        return rounds, clock() - started


def _describe_cut(rows, key, cut, unit, random_inputs):
    row = rows[key]
    pulled = [p for p in cut.ops if p != key]
    if pulled:
        row["pulled_in"] = pulled
    for p in pulled:
        rows[p]["status"] = "folded"
        rows[p]["reason"] = "timed with op %d: %s" % (key, cut.pulled.get(p, "pulled in"))
        rows[p].setdefault("timed_in", key)
    if random_inputs:
        row["random_inputs"] = random_inputs
    row["delegated_alone"] = unit.delegated
    if row.get("delegated") is not None and unit.delegated is not None and row["delegated"] != unit.delegated:
        row["note"] = (
            "alone it ran on builtin kernels, in the model on the delegate"
            if row["delegated"]
            else "alone the delegate took it, in the model it ran on builtin kernels"
        )


def _order(base, units, whole):
    """A round: the baselines, the sub-models in execution order with the baselines again every BASE_EVERY, the
    whole model last."""
    order = list(base)
    for n, unit in enumerate(units):
        order.append(unit)
        if (n + 1) % BASE_EVERY == 0:
            order.extend(base)
    if order[-1] is not base[-1]:
        order.extend(base)
    order.append(whole)
    return order


def profile(runtime, model_path, whole, plan_graph, input_tensors, opts, timer, emit, deadline):
    """The ``ops`` part of a profile result. ``whole`` is the profiled interpreter (its inputs set), ``plan_graph``
    its execution graph (graph.py), ``deadline`` the perf_counter value the whole per-operator run must end by."""
    run = _Run(runtime, model_path, opts, emit, deadline)
    emit("phase", phase="ops")
    with open(model_path, "rb") as handle:
        source = handle.read()
    try:
        model = fb.Model(source)
    except Exception as exc:  # noqa: BLE001 - a layout this reader does not know: say so, keep the profile
        return {"available": False, "reason": "the model's flatbuffer cannot be cut here: %s" % exc}
    sg = model.subgraphs[0]
    rows = _rows(sg, plan_graph)
    plan = _plan(plan_graph, opts["delegate"])
    folded = _folded(sg)
    reference, reference_why = _reference(runtime, model_path, input_tensors, opts["threads"])
    folder = tempfile.mkdtemp(prefix="edgeprof-ops-", dir=_scratch_dir(model_path))
    try:
        try:
            empty, _ = _load(runtime, model, source, cut_mod.empty(model), os.path.join(folder, "empty.tflite"),
                             opts, reference, np.random.RandomState(0))  # fmt: skip
        except AgentError as exc:
            return {"available": False, "reason": "an empty sub-model does not run here: %s" % exc.message}
        empty = Unit("empty", "empty", empty)
        dispatch = _dispatch_unit(runtime, folder, opts)
        units = run.load(model, source, rows, _wanted(rows, plan, folded), reference, folder)
        reference = None  # every sub-model has its inputs: the kept activations can go
        rss_loaded = memory.rss_kb()
        whole_unit = Unit("whole", "whole", invoke=whole.invoke)
        base = [empty] + ([dispatch] if dispatch is not None else [])
        rounds, measured_s = run.measure(_order(base, units, whole_unit))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for index, why in folded.items():
        if rows[index]["status"] == "timed":
            rows[index]["status"] = "folded"
            rows[index]["reason"] = why
    figures = opstats.summarize(rows, plan, units, empty, dispatch, whole_unit, rounds, timer)
    result = {
        "available": True,
        "method": METHOD,
        "method_text": METHOD_TEXT,
        "subgraphs": len(model.subgraphs),
        "operators": len(rows),
        "rounds": rounds,
        "repeats": REPEATS,
        "measured_seconds": measured_s,
        "seconds": time.perf_counter() - run.started,
        "max_seconds": run.budget,
        "stopped": run.stopped,
        "inputs": "random" if reference_why else "activations",
        "sub_models": len(units),
        "rss_with_sub_models_kb": rss_loaded,
    }
    result.update(figures)
    result.update({"plan": plan, "ops": rows, "notes": _notes(model, run, rounds, reference_why)})
    return result


def _notes(model, run, rounds, reference_why):
    notes = []
    if reference_why:
        notes.append("inputs are random, not the model's activations: " + reference_why)
    if len(model.subgraphs) > 1:
        notes.append(
            "the model has %d subgraphs: operators of subgraphs 1-%d are timed inside the operator that calls them"
            % (len(model.subgraphs), len(model.subgraphs) - 1)
        )
    notes.extend(run.problems)
    threads = run.opts.get("threads")
    if threads and int(threads) > 1:
        notes.append(
            "%d threads: each operator alone has a thread pool of its own, woken for it, where in the model one pool "
            "serves every operator; small operators look slower alone (per-operator figures read best with 1 thread)"
            % int(threads)
        )
    if run.stopped == "load":
        notes.append("--max-seconds ran out while the sub-models loaded: some operators were not measured")
    elif run.stopped == "measure":
        notes.append(
            "--max-seconds ran out after %d rounds (%d asked for)" % (rounds, int(run.opts.get("ops_rounds") or 50))
        )
    return notes
