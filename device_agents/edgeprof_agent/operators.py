"""Latency per operator, measured on the board with the runtime and delegate the model runs with.

LiteRT's Python interpreter has no op profiler, so each operator of the main subgraph is cut out of the model
(cut.py: its real tensors, shapes, quantisation and options) and run as a model of its own, through the same
runtime, delegate and threads. Method, and its bias:

* Inputs: each sub-model is fed the activations the whole model computes from the profile's input (read from an
  interpreter on builtin kernels that keeps every tensor), so data-dependent operators (GATHER indices, computed
  shapes, dynamic sizes) see what they see in the model. Where that interpreter cannot run the model (custom ops only
  XNNPACK provides), the inputs are random and the result says so.
* Rounds: in each round every sub-model runs in the model's execution order, with the whole model and an empty
  sub-model (no operator: what one ``invoke()`` costs by itself, the timer included) in the same rounds: first one
  invoke right after the other units ran (*cold*: the caches hold what they left), then two more (*warm*: its own
  weights and tensors are in cache). Interleaving spreads drift and other load over every unit alike.
* Per operator: the median of its warm invokes minus the empty sub-model's median, and the same for the cold ones.
  Warm matches the model where the whole model's working set stays in cache between inferences (the sum of the
  operators then comes within a few percent of the model); where it does not, weights stream in from memory on
  every inference, the warm figures miss that, and the cold ones (everything evicted by the other sub-models, inputs
  too, which in the model the previous operator has just written) bound it from above. Every result reports the
  sum of the operators plus one empty invoke against the whole model, warm and cold; what isolation cannot see is
  that difference: work a delegate fuses across operators, cache state, per-node dispatch.
* An operator whose time is within twice the standard error of that difference (or the clock's own cost) of zero
  is *below resolution*: flagged, and merged into one line by the host, not printed as noise.
* Where the execution plan has several nodes (a delegate took part of the graph), each delegate node is also cut
  and timed as one piece, so its time can be set against the sum of the operators it covers.
* Not cut: the weight expansions (DEQUANTIZE of float16, DENSIFY of sparse constants) and VAR_HANDLE / CALL_ONCE run
  inside the cut of the operator that needs them; a sub-model the runtime refuses to load or run is reported with
  the runtime's reason. Operators of other subgraphs (bodies of WHILE, IF) are timed inside the operator calling them.

Python 3.8, numpy and the board's LiteRT runtime.
"""

import math
import os
import shutil
import tempfile
import time

import numpy as np

from . import cut as cut_mod
from . import flatbuffer as fb
from . import graph as graph_mod
from . import memory, probe, runtimes
from .protocol import AgentError

METHOD = "isolated"
METHOD_TEXT = (
    "each operator cut out of the model with its real tensors and run alone through the same runtime, delegate and "
    "threads, fed the model's own activations; in rounds, in execution order, interleaved with the whole model and an "
    "empty sub-model whose median (one invoke's own cost) is subtracted; warm: the median of the invokes right after "
    "an operator's first one in a round, cold: of those first ones"
)
LOAD_SHARE = 0.7  # loading the sub-models may take this share of the time bound; the rest is left for the rounds
MIN_ROUNDS = 3
TICK_S = 0.5
REPEATS = 2  # invokes of a unit right after its first one in a round; their median is the figure
EMPTY_EVERY = 8  # the empty sub-model runs again after every this many units, so its median spans the round


class Unit(object):
    """One thing timed per round: an operator's cut, a delegate node's cut, the empty cut or the whole model."""

    def __init__(self, kind, key, invoke=None):
        self.kind = kind  # "op", "node", "empty", "whole"
        self.key = key
        self.invoke = invoke
        self.first = []  # the first invoke after the other units ran: caches hold what they left
        self.samples = []  # the invokes right after it: the unit's own weights and tensors are in cache
        self.interpreter = None
        self.delegated = None
        self.error = None


def _reference(runtime, model_path, tensors, threads):
    """Every activation of the whole model for the profile's input, or (None, why)."""
    module = runtime.module
    kwargs = {"model_path": model_path, "experimental_preserve_all_tensors": True}
    if threads:
        kwargs["num_threads"] = int(threads)
    resolver = runtimes._resolver_type(module)
    if resolver is not None:
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        with runtimes.StderrTee():
            interpreter = module.Interpreter(**kwargs)
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
    """Set the sub-model's inputs: the model's activations for them (resized if the model's were), else random."""
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


def _load(runtime, model, source, cut, folder, name, opts, reference, rng):
    """An interpreter for ``cut`` with its inputs set and one invoke done, or an AgentError saying why not."""
    path = os.path.join(folder, name + ".tflite")
    cut_mod.write(model, source, cut, path)
    try:
        interpreter, _load_info = runtimes.make_interpreter(
            runtime,
            path,
            threads=opts["threads"],
            delegate=opts["delegate"],
            delegate_options=opts["delegate_options"],
        )
    finally:
        cut_mod.remove(path)  # the runtime maps the file: it lives on until the interpreter goes
    try:
        random_inputs = _feed(interpreter, cut, reference, rng)
        interpreter.invoke()
    except Exception as exc:  # noqa: BLE001 - the runtime's own reason is the answer
        raise AgentError("op_failed", "the sub-model fails to run: %s" % runtimes._first_line(str(exc)))
    return interpreter, random_inputs


def _median(values):
    return float(np.median(values)) if len(values) else None


def _se_median(values):
    """Standard error of a median, from the median absolute deviation (normal approximation)."""
    n = len(values)
    if n < 2:
        return None
    data = np.asarray(values, dtype=np.float64)
    mad = float(np.median(np.abs(data - np.median(data))))
    return 1.2533 * 1.4826 * mad / math.sqrt(n)


def _spearman(a, b):
    if len(a) < 3:
        return None
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _round6(value):
    return None if value is None else float("%.6f" % value)


def _tensor_info(sg, indices):
    out = []
    for t in indices:
        if t < 0:
            continue
        tensor = sg.tensors[t]
        out.append(
            {
                "index": t,
                "name": tensor.name,
                "dtype": tensor.dtype,
                "shape": list(tensor.shape_signature or tensor.shape),
                "constant": tensor.constant,
            }
        )
    return out


def profile(runtime, model_path, whole, plan_graph, input_tensors, opts, timer, emit, deadline):
    """The ``ops`` part of a profile result. ``whole`` is the profiled interpreter (its inputs set), ``plan_graph``
    its execution graph (graph.py), ``deadline`` the perf_counter value the whole per-operator run must end by."""
    started = time.perf_counter()
    emit("phase", phase="ops")
    with open(model_path, "rb") as handle:
        source = handle.read()
    try:
        model = fb.Model(source)
    except Exception as exc:  # noqa: BLE001 - a layout this reader does not know: say so, keep the profile
        return {"available": False, "reason": "the model's flatbuffer cannot be cut here: %s" % exc}
    sg = model.subgraphs[0]
    names = _op_names(plan_graph, model)
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
        }
        if op.called_subgraphs:
            row["calls_subgraphs"] = op.called_subgraphs
        rows.append(row)

    folded = _folded(sg)
    covered = plan_graph.covered if plan_graph is not None else {}
    plan = []
    if plan_graph is not None:
        for node in plan_graph.plan():
            if node["op_name"] == graph_mod.DELEGATE:
                ops = sorted(i for i, n in covered.items() if n == node["index"])
                plan.append({"node": node["index"], "kind": "delegate", "delegate": opts["delegate"], "ops": ops})
            else:
                plan.append({"node": node["index"], "kind": "builtin", "op": node["op_name"], "ops": [node["index"]]})
    for row in rows:
        row["node"] = covered.get(row["index"], row["index"])
        row["delegated"] = row["index"] in covered if plan_graph is not None else None

    reference, reference_why = _reference(runtime, model_path, input_tensors, opts["threads"])
    rng = np.random.RandomState(int(opts["seed"]))
    folder = tempfile.mkdtemp(prefix="edgeprof-ops-", dir=_scratch_dir(model_path))
    load_problems = []
    budget = deadline - started
    load_until = started + LOAD_SHARE * budget
    stopped = None
    try:
        empty = Unit("empty", "empty")
        try:
            empty.interpreter, _ = _load(
                runtime, model, source, cut_mod.empty(model), folder, "empty", opts, reference, rng
            )
        except AgentError as exc:
            return {"available": False, "reason": "an empty sub-model does not run here: %s" % exc.message}
        empty.invoke = empty.interpreter.invoke
        dispatch = _dispatch_unit(runtime, folder, opts)

        wanted = []  # (kind, key, op indices)
        multi_node = len(plan) > 1
        for node in plan:
            if multi_node and node["kind"] == "delegate" and len(node["ops"]) > 1:
                wanted.append(("node", node["node"], node["ops"]))
            for i in node["ops"]:
                if i in folded:
                    continue
                wanted.append(("op", i, [i]))
        planned = set(k for kind, k, _ops in wanted if kind == "op")
        for row in rows:  # ops no plan listed (a runtime without op details): in model order
            if row["index"] not in folded and row["index"] not in planned and not plan:
                wanted.append(("op", row["index"], [row["index"]]))

        loaded_units = []
        last_tick = time.perf_counter()
        for number, (kind, key, indices) in enumerate(wanted):
            now = time.perf_counter()
            if now >= load_until:
                stopped = "load"
                for kind2, key2, _i in wanted[number:]:
                    if kind2 == "op":
                        rows[key2]["status"] = "not_measured"
                        rows[key2]["reason"] = "--max-seconds (%g s) ran out while the sub-models loaded" % budget
                break
            if now - last_tick >= TICK_S:
                emit(
                    "progress",
                    phase="ops",
                    step="load",
                    done=number,
                    total=len(wanted),
                    seconds=round(now - started, 3),
                )
                last_tick = now
            unit = Unit(kind, key)
            cut = cut_mod.plan(model, indices)
            try:
                unit.interpreter, random_inputs = _load(
                    runtime, model, source, cut, folder, "%s%d" % (kind, key), opts, reference, rng
                )
            except AgentError as exc:
                if kind == "op":
                    rows[key]["status"] = "not_cut"
                    rows[key]["reason"] = exc.message
                else:
                    load_problems.append("delegate node %d as one piece: %s" % (key, exc.message))
                continue
            unit.invoke = unit.interpreter.invoke
            unit.delegated = _delegated(unit.interpreter)
            if kind == "op":
                row = rows[key]
                pulled = [p for p in cut.ops if p != key]
                if pulled:
                    row["with"] = pulled
                if random_inputs:
                    row["random_inputs"] = random_inputs
                row["delegated_alone"] = unit.delegated
                if (
                    row.get("delegated") is not None
                    and unit.delegated is not None
                    and row["delegated"] != unit.delegated
                ):
                    row["note"] = (
                        "alone it ran on builtin kernels, in the model on the delegate"
                        if row["delegated"]
                        else "alone the delegate took it, in the model it ran on builtin kernels"
                    )
                for p in pulled:
                    rows[p]["status"] = "folded"
                    rows[p]["reason"] = "timed with op %d: %s" % (key, cut.pulled.get(p, "pulled in"))
                    rows[p].setdefault("in", key)
            loaded_units.append(unit)
        reference = None  # every sub-model has its inputs: the kept activations can go
        rss_loaded = memory.rss_kb()

        for i in folded:
            if rows[i]["status"] == "timed":
                rows[i]["status"] = "folded"
                rows[i]["reason"] = folded[i]

        whole_unit = Unit("whole", "whole", whole.invoke)
        base = [empty] + ([dispatch] if dispatch is not None else [])
        order = list(base)
        for n, unit in enumerate(loaded_units):
            order.append(unit)
            if (n + 1) % EMPTY_EVERY == 0:
                order.extend(base)
        if order[-1] is not base[-1]:
            order.extend(base)
        order.append(whole_unit)

        clock = time.perf_counter
        rounds = 0
        measure_started = clock()
        min_rounds = int(opts.get("ops_rounds") or 50)
        min_seconds = float(opts["min_seconds"])
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
            if rounds >= MIN_ROUNDS and now >= deadline:
                if rounds < min_rounds or now - measure_started < min_seconds:
                    stopped = stopped or "measure"
                break
            if rounds >= min_rounds and now - measure_started >= min_seconds:
                break
            if now - last_tick >= TICK_S:
                emit("progress", phase="ops", step="measure", rounds=rounds, seconds=round(now - started, 3))
                last_tick = now
        measured_s = clock() - measure_started
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    return _result(
        rows, plan, empty, dispatch, whole_unit, loaded_units, rounds, measured_s, started, budget, stopped, timer,
        reference_why, load_problems, model, opts, rss_loaded,
    )  # fmt: skip


def _net(samples, overhead):
    return [s - overhead for s in samples]


def _result(rows, plan, empty, dispatch, whole_unit, units, rounds, measured_s, started, budget, stopped, timer,
            reference_why, load_problems, model, opts, rss_loaded):  # fmt: skip
    overhead = _median(empty.samples)
    overhead_cold = _median(empty.first)
    overhead_se = _se_median(empty.samples) or 0.0
    node_ms = node_cold = node_se = 0.0
    if dispatch is not None:  # what one delegate node costs beyond an empty invoke (an upper bound: 8 MACs)
        node_ms = max(0.0, _median(dispatch.samples) - overhead)
        node_cold = max(0.0, _median(dispatch.first) - overhead_cold)
        node_se = _se_median(dispatch.samples) or 0.0
    clock_ms = float((timer or {}).get("back_to_back_ns") or 0.0) / 1e6
    op_units = [u for u in units if u.kind == "op"]
    halves = ([], [])
    for unit in op_units:
        row = rows[unit.key]
        per_node = bool(unit.delegated)
        net = _net(unit.samples, overhead + (node_ms if per_node else 0.0))
        median = _median(net)
        se = _se_median(unit.samples) or 0.0
        resolution = max(clock_ms, 2.0 * math.sqrt(se * se + overhead_se**2 + (node_se**2 if per_node else 0.0)))
        row["ms"] = {
            "median": _round6(median),
            "p10": _round6(float(np.percentile(net, 10))),
            "p90": _round6(float(np.percentile(net, 90))),
            "se": _round6(se),
            "cold": _round6(_median(_net(unit.first, overhead_cold + (node_cold if per_node else 0.0)))),
        }
        row["resolution_ms"] = _round6(resolution)
        row["samples_ms"] = [_round6(s) for s in net]
        if median < resolution:
            row["status"] = "below_resolution"
        per_round = len(unit.samples) // max(rounds, 1) or 1
        halves[0].append(_median([v for i, v in enumerate(net) if (i // per_round) % 2 == 0]))
        halves[1].append(_median([v for i, v in enumerate(net) if (i // per_round) % 2 == 1]))
    timed = [rows[u.key] for u in op_units]
    op_sum = sum(r["ms"]["median"] for r in timed)
    cold_sum = sum(r["ms"]["cold"] for r in timed)
    whole_median = _median(whole_unit.samples)
    whole_cold = _median(whole_unit.first)
    delegate_nodes = sum(1 for n in plan if n["kind"] == "delegate")
    total = op_sum + overhead + delegate_nodes * node_ms
    cold_total = cold_sum + overhead_cold + delegate_nodes * node_cold
    for r in timed:
        r["share"] = _round6(r["ms"]["median"] / op_sum) if op_sum > 0 else None
    nodes = dict((u.key, u) for u in units if u.kind == "node")
    for node in plan:
        unit = nodes.get(node["node"])
        members = [rows[i] for i in node["ops"] if "ms" in rows[i]]
        node["ops_sum_ms"] = _round6(sum(r["ms"]["median"] for r in members)) if members else None
        if unit is not None:
            node["ms"] = _round6(_median(_net(unit.samples, overhead + node_ms)))
            node["cold_ms"] = _round6(_median(_net(unit.first, overhead_cold + node_cold)))
    order = sorted(range(len(timed)), key=lambda i: -timed[i]["ms"]["median"])
    top = [timed[i]["index"] for i in order[:5]]
    rank = {"spearman": None, "top5_first_half": None, "top5_second_half": None, "halves": "odd and even rounds"}
    if rounds >= 4 and len(timed) >= 3:
        first, second = halves
        rank["spearman"] = _round6(_spearman(first, second))
        rank["top5_first_half"] = [timed[i]["index"] for i in sorted(range(len(first)), key=lambda i: -first[i])[:5]]
        rank["top5_second_half"] = [timed[i]["index"] for i in sorted(range(len(second)), key=lambda i: -second[i])[:5]]
    notes = []
    if reference_why:
        notes.append("inputs are random, not the model's activations: " + reference_why)
    if len(model.subgraphs) > 1:
        notes.append(
            "the model has %d subgraphs: operators of subgraphs 1-%d are timed inside the operator that calls them"
            % (len(model.subgraphs), len(model.subgraphs) - 1)
        )
    notes.extend(load_problems)
    if opts.get("threads") and int(opts["threads"]) > 1:
        notes.append(
            "%d threads: each operator alone has a thread pool of its own, woken for it, where in the model one pool "
            "serves every operator; small operators look slower alone (per-operator figures read best with 1 thread)"
            % int(opts["threads"])
        )
    asked = int(opts.get("ops_rounds") or 50)
    if stopped == "load":
        notes.append("--max-seconds ran out while the sub-models loaded: some operators were not measured")
    elif stopped == "measure":
        notes.append("--max-seconds ran out after %d rounds (%d asked for)" % (rounds, asked))
    return {
        "available": True,
        "method": METHOD,
        "method_text": METHOD_TEXT,
        "subgraphs": len(model.subgraphs),
        "operators": len(rows),
        "rounds": rounds,
        "repeats": REPEATS,
        "measured_seconds": measured_s,
        "seconds": time.perf_counter() - started,
        "max_seconds": budget,
        "stopped": stopped,
        "inputs": "random" if reference_why else "activations",
        "sub_models": len(units),
        "rss_with_sub_models_kb": rss_loaded,
        "overhead_ms": _round6(overhead),
        "overhead_cold_ms": _round6(overhead_cold),
        "node_ms": _round6(node_ms),
        "delegate_nodes": delegate_nodes,
        "whole_ms": {
            "median": _round6(whole_median),
            "p10": _round6(float(np.percentile(whole_unit.samples, 10))),
            "p90": _round6(float(np.percentile(whole_unit.samples, 90))),
            "cold": _round6(whole_cold),
        },
        "sum_ms": _round6(total),
        "sum_ratio": _round6(total / whole_median) if whole_median else None,
        "cold_sum_ms": _round6(cold_total),
        "cold_sum_ratio": _round6(cold_total / whole_median) if whole_median else None,
        "top": top,
        "rank_stability": rank,
        "plan": plan,
        "ops": rows,
        "notes": notes,
    }


def _dispatch_unit(runtime, folder, opts):
    """The probe model (one tiny Dense layer) through the delegate: its time over an empty invoke is what one
    delegate node costs by itself. An operator alone is a node of its own; in the model it shares one with others."""
    if opts["delegate"] == "none":
        return None
    path = os.path.join(folder, "dispatch.tflite")
    with open(path, "wb") as handle:
        handle.write(probe.model("float32"))
    try:
        interpreter, _info = runtimes.make_interpreter(
            runtime, path, threads=opts["threads"], delegate=opts["delegate"], delegate_options=opts["delegate_options"]
        )
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
        interpreter.invoke()
    except Exception:  # noqa: BLE001 - no correction then; the sum check shows what it would have been
        return None
    finally:
        cut_mod.remove(path)
    if not _delegated(interpreter):
        return None
    unit = Unit("dispatch", "dispatch", interpreter.invoke)
    unit.interpreter = interpreter
    return unit


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


def _op_names(plan_graph, model):
    sg = model.subgraphs[0]
    names = {}
    if plan_graph is not None:
        for op in plan_graph.originals:
            names[op["index"]] = op["op_name"]
    for op in sg.operators:
        if op.index not in names:
            names[op.index] = op.custom if op.custom else "BUILTIN_%d" % op.code
    return names


def _scratch_dir(model_path):
    """The board's work directory's tmp/ beside models/, else the system's temporary directory."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(model_path))), "tmp")
    return folder if os.path.isdir(folder) and os.access(folder, os.W_OK) else None
