"""The profile record: one typed, versioned definition of a profile run, shared by the agent and the host.

The agent builds its answer to ``profile`` from these classes and sends ``to_dict()`` as JSON; the host reads every
stored run back through ``ProfileRecord.from_dict`` and every view (``profile``'s summary, ``results show``, the
report, ``compare``, ``check``) renders from the typed record. The JSON layout is the one earlier agents wrote, so
records stored by an older edgeprof load too: a field they lack is *not recorded* (``recorded(name)`` is False and
the value is None), which the views print as "not recorded", never as a figure. Keys this version does not know (a
newer agent's) are kept in ``extra`` and written back unchanged, so a round trip loses nothing.

Python 3.8 (the agent runs on old boards): ``typing`` generics, no ``X | Y`` unions. The host imports this module
from the ``edgeprof_agent`` package that ships in its wheel.

``RECORD_VERSION`` history: 1 (agent 0.4.0) typed record, ``record_version``, ``conditions.process`` (the agent's
PID, one process a run), ``group`` (a run of a ``--repeat`` group); 2 (agent 0.5.0) ``ops`` (``profile --ops``:
latency per operator and the board's peak, ``Operators``) and ``device.peak``; records without ``record_version``
are 0. ``ops`` is written only when asked for (like ``accuracy``): ``options.ops`` says whether a run was.
2 also: ``duty`` (the share of the measured window the model ran), ``windows`` (idle, warm-up, measured and idle-after
windows on the board's CLOCK_MONOTONIC, for a power meter on the host) and, filled by the host, an ``energy`` from
a meter (``source`` "meter": its 95 % interval, idle baseline, the meter and the clock alignment).
"""

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Dict, List, Optional

RECORD_VERSION = 2
NOT_RECORDED = "not recorded"


class Part(object):
    """A typed part of the record. Known keys are fields; ``extra`` keeps the rest; ``missing`` the absent ones."""

    NESTED: ClassVar[Dict[str, Any]] = {}

    @classmethod
    def from_dict(cls, data):
        if data is None:
            return None
        if not isinstance(data, dict):
            raise TypeError("%s: expected an object, got %r" % (cls.__name__, type(data).__name__))
        names = [f.name for f in fields(cls) if f.name not in ("extra", "missing")]
        values = {}
        for name in names:
            if name in data:
                value = data[name]
                values[name] = _typed(cls.NESTED.get(name), value)
        part = cls(**values)
        part.extra = dict((k, v) for k, v in data.items() if k not in names)
        part.missing = [name for name in names if name not in data]
        return part

    @classmethod
    def build(cls, **values):
        """A part from keyword values: dicts of nested parts are typed, an unknown name is a TypeError (a typo never
        reaches the host), and fields not given are not recorded (left out of ``to_dict``)."""
        for name, nested in cls.NESTED.items():
            if name in values:
                values[name] = _typed(nested, values[name])
        part = cls(**values)
        part.missing = [f.name for f in fields(cls) if f.name not in values and f.name not in ("extra", "missing")]
        return part

    def to_dict(self):
        out = {}
        skip = set(self.missing)
        for f in fields(self):
            if f.name in ("extra", "missing") or f.name in skip:
                continue
            value = getattr(self, f.name)
            if isinstance(value, list):
                out[f.name] = [v.to_dict() if isinstance(v, Part) else v for v in value]
            else:
                out[f.name] = value.to_dict() if isinstance(value, Part) else value
        out.update(self.extra)
        return out

    def set(self, **values):
        """Set fields, which then count as recorded (the host adds figures to the agent's parts this way)."""
        names = [f.name for f in fields(self)]
        for name, value in values.items():
            if name not in names or name in ("extra", "missing"):
                raise TypeError("%s has no field %r" % (type(self).__name__, name))
            setattr(self, name, _typed(self.NESTED.get(name), value))
            if name in self.missing:
                self.missing.remove(name)
        return self

    def recorded(self, name):
        """Was ``name`` in the record (even as null)? False for fields an older agent did not write."""
        return name not in self.missing


def _typed(nested, value):
    """A nested part from its dict, and a list of parts from a list of dicts (``NESTED`` names the part's class)."""
    if nested is None:
        return value
    if isinstance(value, dict):
        return nested.from_dict(value)
    if isinstance(value, list):
        return [nested.from_dict(v) if isinstance(v, dict) else v for v in value]
    return value


@dataclass
class ModelInfo(Part):
    name: Optional[str] = None
    sha256: Optional[str] = None
    size_bytes: Optional[int] = None
    gzip_bytes: Optional[int] = None
    path: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Device(Part):
    hostname: Optional[str] = None
    machine: Optional[str] = None
    system: Optional[str] = None
    os: Optional[str] = None
    board: Optional[str] = None
    board_kind: Optional[str] = None
    emulated: Optional[bool] = None
    emulated_reason: Optional[str] = None
    peak: Optional[Dict[str, Any]] = None  # the board's peak with this runtime (``profile --ops``; Peak.fact())
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Runtime(Part):
    name: Optional[str] = None
    version: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)

    def text(self):
        return " ".join(str(v) for v in (self.name, self.version) if v) or NOT_RECORDED


@dataclass
class Delegation(Part):
    requested: Optional[str] = None
    applied: Optional[bool] = None  # None: the graph did not tell (see evidence)
    ops: Optional[int] = None
    delegated_ops: Optional[int] = None
    delegate_nodes: Optional[int] = None
    undelegated_ops: Optional[List[str]] = None
    fully_delegated: Optional[bool] = None
    evidence: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Warmup(Part):
    runs: Optional[int] = None
    seconds: Optional[float] = None
    mean_ms: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


LATENCY_FIGURES = ("min", "median", "mean", "p90", "p95", "p99", "max", "std")


@dataclass
class Latency(Part):
    """Milliseconds, from every measured inference (stats.py: percentiles by linear interpolation, std ddof=1)."""

    count: Optional[int] = None
    min: Optional[float] = None
    mean: Optional[float] = None
    median: Optional[float] = None
    p90: Optional[float] = None
    p95: Optional[float] = None
    p99: Optional[float] = None
    max: Optional[float] = None
    std: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)

    def get(self, name):
        return getattr(self, name)


@dataclass
class Arena(Part):
    available: Optional[bool] = None
    estimate_bytes: Optional[int] = None
    builtin_bytes: Optional[int] = None
    delegated: Optional[bool] = None
    method: Optional[str] = None
    reason: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Memory(Part):
    NESTED: ClassVar[Dict[str, Any]] = {"tensor_arena": Arena}

    peak_rss_kb: Optional[int] = None
    peak_rss_load_kb: Optional[int] = None
    peak_rss_inference_kb: Optional[int] = None
    peak_reset_before_load: Optional[bool] = None
    peak_reset_before_inference: Optional[bool] = None
    rss_before_load_kb: Optional[int] = None
    rss_after_load_kb: Optional[int] = None
    rss_after_runs_kb: Optional[int] = None
    model_rss_delta_kb: Optional[int] = None
    rss_allocate_delta_kb: Optional[int] = None
    tensor_arena: Optional[Arena] = None
    board: Optional[Dict[str, Any]] = None
    peak_reset_problem: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Meter(Part):
    """A power meter on the host (edgeprof.meters): what it is and how it was read."""

    kind: Optional[str] = None  # shelly, tasmota, http-json, command
    where: Optional[str] = None  # "shelly plug at 10.0.0.5": its name in messages
    method: Optional[str] = None  # what the driver reads (the vendor's documented call)
    rate_hz: Optional[float] = None  # the rate it was asked to read at
    resolution_w: Optional[float] = None  # its display step (0: unknown)
    accuracy_pct: Optional[float] = None  # its stated calibration accuracy, when known
    target: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Alignment(Part):
    """The board's CLOCK_MONOTONIC mapped to the host's clock (a meter's readings are stamped on the host)."""

    offset_s: Optional[float] = None
    drift_ppm: Optional[float] = None
    error_s: Optional[float] = None  # bound on any mapped time: the edges of every window are shrunk by it
    rtt_s: Optional[float] = None
    at_host_s: Optional[float] = None
    exchanges: Optional[int] = None
    method: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


SENSOR = "sensor"
METER = "meter"


@dataclass
class Energy(Part):
    """Energy per inference, or ``available`` False and the ``reason`` (never a guess).

    Measured by a power sensor on the board (the agent: ``mj_per_inference`` gross, no interval) or by a meter on
    the host (``source`` "meter": ``mj_per_inference`` above idle with its 95 % interval ``mj_per_inference_u95``,
    the idle baseline, the meter and the clock alignment; a board sensor that also ran is under ``board_sensor``).
    """

    available: Optional[bool] = None
    reason: Optional[str] = None
    fix: Optional[str] = None
    source: Optional[str] = None  # "meter", or absent: the board's sensor
    checked: Optional[Dict[str, str]] = None
    sensor: Optional[str] = None
    label: Optional[str] = None
    scope: Optional[str] = None
    total: Optional[str] = None
    basis: Optional[str] = None  # "above idle" or "gross" (absent: the sensor's gross figure)
    mj_per_inference: Optional[float] = None
    mj_per_inference_u95: Optional[float] = None  # half-width of the 95 % interval (a meter's)
    mj_per_inference_above_idle: Optional[float] = None
    mj_per_inference_gross: Optional[float] = None
    mj_per_inference_gross_u95: Optional[float] = None
    relative_u95: Optional[float] = None
    confidence: Optional[float] = None
    dof: Optional[float] = None  # degrees of freedom of the interval (Welch-Satterthwaite)
    coverage_factor: Optional[float] = None
    precision: Optional[float] = None  # the relative 95 % interval asked for (--energy-precision)
    precision_reached: Optional[bool] = None
    mean_w: Optional[float] = None
    idle_w: Optional[float] = None  # the idle baseline
    above_idle_w: Optional[float] = None
    above_idle_w_u95: Optional[float] = None
    drift_w: Optional[float] = None  # idle after minus idle before
    drift_u95_w: Optional[float] = None
    sample_rate_hz: Optional[float] = None
    target_rate_hz: Optional[float] = None
    resolution_w: Optional[float] = None
    samples: Optional[int] = None
    idle_samples: Optional[int] = None
    readings: Optional[int] = None
    read_errors: Optional[int] = None
    window_s: Optional[float] = None
    inferences: Optional[int] = None
    duty: Optional[float] = None
    windows: Optional[Dict[str, Any]] = None  # each window's readings, mean and standard error (host clock)
    stopped: Optional[Dict[str, str]] = None  # phase -> why the host ended it
    uncertainty: Optional[List[Dict[str, Any]]] = None
    notes: Optional[List[str]] = None
    method: Optional[str] = None
    counter_check: Optional[Dict[str, Any]] = None
    meter_record: Optional[Dict[str, Any]] = None
    meter: Optional[Meter] = None
    alignment: Optional[Alignment] = None
    board_sensor: Optional["Energy"] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)

    def mj(self):
        """mJ per inference when it was measured (the headline figure, else above idle, else gross)."""
        if not self.available:
            return None
        for value in (self.mj_per_inference, self.mj_per_inference_above_idle, self.mj_per_inference_gross):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        return None

    def origin(self):
        """``meter`` (a meter on the host) or ``sensor`` (the board's own)."""
        return METER if self.source == METER else SENSOR

    def u95(self):
        """Half-width of the 95 % interval of ``mj()``; None when the source gives none (a board sensor)."""
        if self.mj() is None or self.origin() != METER:
            return None
        value = self.mj_per_inference_u95
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def basis_text(self):
        if self.basis:
            return self.basis
        if self.mj_per_inference is None and self.mj_per_inference_above_idle is not None:
            return "above idle"
        return "gross"


Energy.NESTED = {"meter": Meter, "alignment": Alignment, "board_sensor": Energy}


@dataclass
class Thermal(Part):
    before: Optional[Dict[str, Any]] = None
    after: Optional[Dict[str, Any]] = None
    max_temp_c: Optional[Dict[str, float]] = None
    throttled: Optional[bool] = None
    throttle_sources: Optional[List[str]] = None
    throttle_evidence: Optional[List[str]] = None
    throttle_reason: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Sampler(Part):
    """Where power sampling and thermal watching ran (sidecar.py): ``sibling``, ``in-process``, or none."""

    ran: Optional[bool] = None
    where: Optional[str] = None
    reason: Optional[str] = None
    energy: Optional[Dict[str, Any]] = None
    thermal: Optional[Dict[str, Any]] = None
    pid: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)

    def text(self):
        if not self.ran:
            return "none"
        sensor = self.energy or {}
        rate = sensor.get("target_rate_hz")
        return str(self.where) + (
            ", %s at %s Hz" % (sensor.get("sensor"), "%g" % rate) if sensor.get("sensor") and rate else ""
        )


@dataclass
class Threads(Part):
    requested: Optional[int] = None
    used: Optional[int] = None
    created: Optional[int] = None
    reason: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Process(Part):
    """The agent process that measured: one run, one fresh process (the unit of replication)."""

    pid: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Conditions(Part):
    NESTED: ClassVar[Dict[str, Any]] = {"sampler": Sampler, "threads": Threads, "process": Process}

    sampler: Optional[Sampler] = None
    threads: Optional[Threads] = None
    process: Optional[Process] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Stability(Part):
    """pyperf-style checks computed on the board (stability.py); ``warnings`` are printed as written."""

    stable: Optional[bool] = None
    warnings: Optional[List[str]] = None
    samples: Optional[int] = None
    percentiles: Optional[Dict[str, Any]] = None
    spread: Optional[Dict[str, Any]] = None
    outliers: Optional[Dict[str, Any]] = None
    timer: Optional[Dict[str, Any]] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Accuracy(Part):
    """``--eval``: the board's outputs against the host's for the same file and data."""

    eval_data: Optional[str] = None
    samples: Optional[int] = None
    board: Optional[Dict[str, Any]] = None
    host: Optional[Dict[str, Any]] = None
    difference: Optional[Dict[str, Any]] = None
    agreement: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class OperatorTimes(Part):
    """Milliseconds of one operator alone, net of an empty invoke (and, on a delegate, one node): opstats.py."""

    median: Optional[float] = None
    p10: Optional[float] = None
    p90: Optional[float] = None
    se: Optional[float] = None  # standard error of the median
    cold: Optional[float] = None  # the first invoke after the other units ran
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


OPERATOR_STATUSES = ("timed", "below_resolution", "folded", "not_cut", "not_measured")


@dataclass
class OperatorRow(Part):
    """One operator of the main subgraph: where it ran, its time alone (``status`` "timed" or "below_resolution"), or
    why it has none (``reason``); the host adds what it costs (MACs, bytes, rates, fraction of the board's peak)."""

    NESTED: ClassVar[Dict[str, Any]] = {"ms": OperatorTimes}

    index: Optional[int] = None
    op: Optional[str] = None
    name: Optional[str] = None  # its output tensor's name: the Keras layer it belongs to (the host's names.py)
    inputs: Optional[List[Dict[str, Any]]] = None
    outputs: Optional[List[Dict[str, Any]]] = None
    status: Optional[str] = None  # one of OPERATOR_STATUSES
    node: Optional[int] = None  # its node in the execution plan
    delegated: Optional[bool] = None  # in the model; None: the runtime does not show its plan
    delegated_alone: Optional[bool] = None
    calls_subgraphs: Optional[List[int]] = None
    pulled_in: Optional[List[int]] = None  # operators timed inside this one's cut (VAR_HANDLE, weight expansions)
    timed_in: Optional[int] = None  # the operator whose cut times this one ("folded")
    random_inputs: Optional[Any] = None
    reason: Optional[str] = None
    note: Optional[str] = None
    ms: Optional[OperatorTimes] = None
    resolution_ms: Optional[float] = None
    samples_ms: Optional[List[float]] = None  # net warm invokes, at most 200 at an even stride
    share: Optional[float] = None  # of the sum of the operators
    macs: Optional[int] = None
    weight_bytes: Optional[int] = None
    activation_bytes: Optional[int] = None
    compute: Optional[str] = None  # the data type its MACs run in: its weights', else its input's
    macs_per_byte: Optional[float] = None
    gmacs_per_s: Optional[float] = None
    gbytes_per_s: Optional[float] = None
    peak_fraction: Optional[float] = None
    bandwidth_fraction: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)

    def median_ms(self):
        """Its time alone, for operators that have one (timed or below resolution), else None."""
        if self.status not in ("timed", "below_resolution") or self.ms is None:
            return None
        return self.ms.median


@dataclass
class PlanNode(Part):
    """A node of the execution plan after delegation: a delegate node with the operators it covers, or a builtin
    operator. ``ms``: a delegate node cut and timed as one piece (where the plan has several nodes)."""

    node: Optional[int] = None
    kind: Optional[str] = None  # "delegate" or "builtin"
    delegate: Optional[str] = None
    op: Optional[str] = None
    ops: Optional[List[int]] = None
    ms: Optional[float] = None
    cold_ms: Optional[float] = None
    ops_sum_ms: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class RankStability(Part):
    spearman: Optional[float] = None  # of the operators' medians in the odd and in the even rounds
    top5_first_half: Optional[List[int]] = None
    top5_second_half: Optional[List[int]] = None
    halves: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Peak(Part):
    """What the board's CPU does at best with this runtime, delegate and threads (peak.py): the roofline's roofs."""

    method: Optional[str] = None
    runtime: Optional[Dict[str, Any]] = None
    delegate: Optional[str] = None
    threads: Optional[int] = None
    runs: Optional[List[Dict[str, Any]]] = None
    gmacs_per_s: Optional[Dict[str, float]] = None  # by data type
    peak_from: Optional[Dict[str, str]] = None
    gbytes_per_s: Optional[float] = None
    complete: Optional[bool] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)

    def fact(self):
        """The peak as a device fact (``device.peak``): a plain profile of the same board can be set against it."""
        return {
            "runtime": self.runtime,
            "delegate": self.delegate,
            "threads": self.threads,
            "gmacs_per_s": self.gmacs_per_s,
            "gbytes_per_s": self.gbytes_per_s,
            "method": self.method,
        }


@dataclass
class OperatorCosts(Part):
    """The whole model's MACs and achieved rate against the peak: added by the host (edgeprof.ops.costs)."""

    macs: Optional[int] = None
    macs_by_type: Optional[Dict[str, int]] = None
    macs_not_estimated: Optional[List[str]] = None
    median_ms: Optional[float] = None  # the profile's median latency of the whole model
    gmacs_per_s: Optional[float] = None
    peak_fraction: Optional[float] = None
    main_type: Optional[str] = None
    note: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Operators(Part):
    """``profile --ops``: every operator of the main subgraph timed alone on the board (operators.py), how the figures
    hold together (the sum against the whole model, the ranking's stability) and the board's peak; or ``available``
    False and the ``reason``."""

    NESTED: ClassVar[Dict[str, Any]] = {
        "whole_ms": OperatorTimes,
        "rank_stability": RankStability,
        "plan": PlanNode,
        "ops": OperatorRow,
        "peak": Peak,
        "costs": OperatorCosts,
    }

    available: Optional[bool] = None
    reason: Optional[str] = None
    method: Optional[str] = None
    method_text: Optional[str] = None
    subgraphs: Optional[int] = None
    operators: Optional[int] = None
    rounds: Optional[int] = None
    repeats: Optional[int] = None
    measured_seconds: Optional[float] = None
    seconds: Optional[float] = None
    seconds_total: Optional[float] = None  # with loading and the peak
    max_seconds: Optional[float] = None
    stopped: Optional[str] = None  # "load" or "measure" when --max-seconds ended it first
    inputs: Optional[str] = None  # "activations" (the model's own) or "random"
    sub_models: Optional[int] = None
    rss_with_sub_models_kb: Optional[int] = None
    overhead_ms: Optional[float] = None  # an empty invoke
    overhead_cold_ms: Optional[float] = None
    node_ms: Optional[float] = None  # one delegate node by itself
    delegate_nodes: Optional[int] = None
    whole_ms: Optional[OperatorTimes] = None  # the whole model in the same rounds
    sum_ms: Optional[float] = None
    sum_ratio: Optional[float] = None
    cold_sum_ms: Optional[float] = None
    cold_sum_ratio: Optional[float] = None
    top: Optional[List[int]] = None
    rank_stability: Optional[RankStability] = None
    plan: Optional[List[PlanNode]] = None
    ops: Optional[List[OperatorRow]] = None
    notes: Optional[List[str]] = None
    peak: Optional[Peak] = None
    costs: Optional[OperatorCosts] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)

    def rows(self, *statuses):
        """The operators with one of ``statuses`` (all of them without), in execution order."""
        return [r for r in self.ops or [] if not statuses or r.status in statuses]

    def timed(self):
        """Operators with a time of their own above the timer's resolution."""
        return [r for r in self.rows("timed") if r.ms is not None and r.ms.median is not None]


@dataclass
class Group(Part):
    """A run of a ``--repeat`` group: ``index`` of ``of`` processes, interleaved with the other groups of ``batch``."""

    id: Optional[int] = None
    index: Optional[int] = None
    of: Optional[int] = None
    batch: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Duty(Part):
    """The share of the measured window the model ran: asked for (``duty_cycle``, or ``pause_ms``) and achieved."""

    requested: Optional[float] = None
    pause_ms: Optional[float] = None
    achieved: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class Windows(Part):
    """The agent's phases on the board's monotonic clock, ``[start, end]`` in seconds: what a meter on the host
    maps onto its own clock."""

    clock: Optional[str] = None
    idle: Optional[List[float]] = None
    warmup: Optional[List[float]] = None
    measure: Optional[List[float]] = None
    idle_after: Optional[List[float]] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)


@dataclass
class ProfileRecord(Part):
    """One model measured once, in one agent process, on one board: what ``profile`` answers and the store keeps.

    The agent fills the measurement; the host adds ``id``, ``created_at``, ``edgeprof_version``, ``model``,
    ``target``, ``device``, ``agent_version``, ``accuracy`` (``--eval``) and ``group`` (``--repeat``).
    """

    NESTED: ClassVar[Dict[str, Any]] = {
        "model": ModelInfo,
        "device": Device,
        "runtime": Runtime,
        "delegation": Delegation,
        "warmup": Warmup,
        "latency_ms": Latency,
        "memory": Memory,
        "energy": Energy,
        "thermal": Thermal,
        "conditions": Conditions,
        "stability": Stability,
        "accuracy": Accuracy,
        "group": Group,
        "ops": Operators,
        "duty": Duty,
        "windows": Windows,
    }

    record_version: Optional[int] = None
    id: Optional[int] = None
    created_at: Optional[str] = None
    edgeprof_version: Optional[str] = None
    agent_version: Optional[str] = None
    target: Optional[str] = None
    model: Optional[ModelInfo] = None
    device: Optional[Device] = None
    options: Optional[Dict[str, Any]] = None
    model_path: Optional[str] = None
    runtime: Optional[Runtime] = None
    delegate: Optional[str] = None
    delegate_options: Optional[Dict[str, str]] = None
    delegation: Optional[Delegation] = None
    threads: Optional[int] = None
    cpu_affinity: Optional[List[int]] = None
    inputs: Optional[str] = None
    init_ms: Optional[float] = None
    load_ms: Optional[float] = None
    allocate_ms: Optional[float] = None
    first_inference_ms: Optional[float] = None
    warmup: Optional[Warmup] = None
    latency_ms: Optional[Latency] = None
    measured_seconds: Optional[float] = None
    duty: Optional[Duty] = None
    windows: Optional[Windows] = None
    memory: Optional[Memory] = None
    energy: Optional[Energy] = None
    thermal: Optional[Thermal] = None
    throttled: Optional[bool] = None
    conditions: Optional[Conditions] = None
    stability: Optional[Stability] = None
    accuracy: Optional[Accuracy] = None
    group: Optional[Group] = None
    ops: Optional[Operators] = None
    samples_ms: Optional[List[float]] = None
    samples_subsampled: Optional[bool] = None
    histogram: Optional[Dict[str, Any]] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)

    @classmethod
    def load(cls, data):
        """A stored record of any edgeprof version (an untyped dict from before this module too)."""
        record = cls.from_dict(data)
        if record.record_version is None:
            record.record_version = 0  # written before the record was typed; its absent fields are not recorded
        return record

    # -- what every view needs ----------------------------------------------------------------------------------

    def pid(self):
        process = self.conditions.process if self.conditions else None
        return process.pid if process else None

    def energy_mj(self):
        return self.energy.mj() if self.energy else None

    def energy_u95(self):
        return self.energy.u95() if self.energy else None

    def emulated(self):
        return bool(self.device and self.device.emulated)

    def caveats(self):
        """What a reader must know before trusting a figure of this run, in the words every view prints."""
        out = []
        if self.emulated():
            reason = (self.device.emulated_reason if self.device else None) or "emulated"
            out.append("EMULATED board (%s): timings check correctness, not speed" % reason)
        if self.throttled:
            out.append("THROTTLED during the run")
        return out
