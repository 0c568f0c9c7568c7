"""``edgeprof search``: which compression of a model is best on a board, within a budget, by measuring it.

    from edgeprof.search import search
    found = search("model.keras", data="data.npz", targets=["pi5"], space="examples/search/cnn.toml",
                   sampler="tpe", trials=30, max_drop=1.0)
    print(found.summary())

A study is an Optuna study kept in the results store's database (:mod:`.study`); each trial compresses on the host
with ``edgeprof.compress``, which evaluates the TFLite model with the agent, then profiles it on every board against
the float32 model, interleaved (:mod:`.trial`), in this process or on a Ray cluster (:mod:`.executors`). The
result is the front that takes noise into account, the λ-weighted optimum and the knee (:mod:`.front`,
:mod:`.results`). Optuna (and Ray) are imported only when a search runs: ``pip install 'edgeprof[search]'``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..compress.models import file_sha256
from ..errors import ModelError
from . import space as space_mod
from .objectives import check_measurable
from .objectives import parse as parse_objectives
from .results import StudyResult, export, load_result
from .study import SAMPLERS, Runner, Settings, StudyError, existing, open_study, sampler_advice
from .trial import Context

Say = Callable[[str], None]

DEFAULT_REPEAT = 3


def _data_spec(data: str, seed: int) -> tuple[str, str | None, str]:
    """The data as the study keeps it (a file by absolute path), the file's SHA-256 and the test split's (as
    ``compress`` splits it with the space's seed); checked before anything trains."""
    from ..data import load_data
    from ..data_checks import check_arrays

    path = Path(data)
    spec = str(path.resolve()) if path.exists() else data
    dataset = load_data(spec, seed=seed)
    check_arrays(dataset)  # a bad file is one line now, not one failed trial per recipe
    return spec, (file_sha256(path) if path.is_file() else None), dataset.test_fingerprint()


def _stored_baseline(store: Any, model_sha: str, test_sha: str, space: space_mod.Space) -> dict[str, Any] | None:
    """A float32 export of this model already stored and still on disk, evaluated on the same test split with the
    same task settings: another study of the model reuses it instead of exporting again."""
    from ..modelfile import sha256_bytes

    top = dict(space.top)
    for row in store.compressions():
        record = row["record"]
        recipe = record.get("recipe") or {}
        if not row.get("is_baseline") or row["source_sha256"] != model_sha:
            continue
        if (record.get("data") or {}).get("test_sha256") != test_sha:  # (no step trains: the seed changes nothing)
            continue
        if any(recipe.get(k) != top.get(k) for k in ("runtime", "task", "loss", "metric")):
            continue
        path = Path(record.get("written_to") or "")
        if path.is_file() and sha256_bytes(path.read_bytes()) == row["model_sha256"]:
            return {"compression": row["id"], "path": str(path), "sha256": row["model_sha256"]}
    return None


def _baseline(ctx_model: str, data: str, out: Path, space: space_mod.Space, store: Any, study: str,
              custom_objects: list[str] | None, say: Say) -> dict[str, Any]:  # fmt: skip
    """The float32 export of the model (an empty recipe), stored: every trial's accuracy drop and speed-up are
    against it, and it is what ``report`` and ``check`` call the baseline of the trials."""
    from ..compress import Recipe, compress

    say("float32 baseline: exporting and evaluating the model as it is")
    recipe = Recipe.from_dict({**dict(space.top), "seed": space.seed, "step": []}, where=space.source)
    made = compress(ctx_model, recipe, data=data, out=out, store=None, latency=False, custom_objects=custom_objects)
    manifest = {**made.manifest, "search": {"study": study, "trial": None}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    compression = store.add_compression(manifest, made.model_file.to_dict())
    return {"compression": compression, "path": str(made.tflite_path), "sha256": made.model_file.sha256}


def search(
    model: str | Path,
    data: str | Path,
    *,
    space: str | Path,
    targets: Sequence[str] = ("local",),
    sampler: str = "tpe",
    trials: int = 20,
    objectives: Sequence[str] | str | None = None,
    budget: str | Path | None = None,
    max_drop: float | None = None,
    resume: bool = False,
    study: str | None = None,
    out: str | Path | None = None,
    store: Any = "default",
    repeat: int = DEFAULT_REPEAT,
    options: Any = None,
    executor: str = "in-process",
    ray_address: str | None = None,
    parallel: int | None = None,
    custom_objects: list[str] | None = None,
    seed: int = 0,
    say: Say | None = None,
    on_progress: Any = None,
) -> StudyResult:
    """Search ``space`` for the recipes that trade least accuracy for most efficiency on ``targets``.

    ``objectives`` (all minimised): accuracy_drop, median_ms, p90_ms, peak_memory_mib, energy_mj, gzip_kib, macs
    (default accuracy_drop and median_ms). ``budget`` (an ``edgeprof check`` budget file) and ``max_drop``
    (percentage points) are constraints: a trial over them is kept but is never on the front or the optimum.
    ``repeat`` fresh agent processes per model and board (at least 2: the front needs the spread between
    processes). ``resume`` continues the study ``study`` (by default named after the model and the space).
    Everything is checked before the first trial trains: the space, the data, the targets, and that every
    objective can be measured on every board.
    """
    from ..budget import Budget
    from ..profile import ProfileOptions
    from ..store import open_store
    from ..targets import select_targets

    say = say or (lambda _msg: None)
    if sampler not in SAMPLERS:
        raise StudyError(f"unknown sampler {sampler!r}", f"use one of: {', '.join(SAMPLERS)}")
    if repeat < 2:
        raise StudyError(
            f"--repeat {repeat}: the noise-aware front needs the spread between processes",
            "use --repeat 2 or more (3 by default)",
        )
    if trials < 1:
        raise StudyError(f"--trials {trials}: nothing to run", "use --trials 1 or more")
    if max_drop is not None and max_drop < 0:
        raise StudyError(f"--max-drop {max_drop:g} is negative", "give the accuracy points you can lose, e.g. 1")
    model_path = Path(model).resolve()
    if not model_path.exists():
        raise ModelError(f"model {model} does not exist", "pass a Keras .keras/.h5 file or SavedModel folder")
    searched = space_mod.load(space)
    if sampler == "grid":
        searched.grid(seed)  # a continuous range is refused now, with the field named
    chosen = select_targets(list(targets))
    found_objectives = parse_objectives(objectives, [t.name for t in chosen])
    limits = Budget.from_file(budget) if budget is not None else None
    data_spec, data_sha, test_sha = _data_spec(str(data), searched.seed)
    options = options or ProfileOptions()
    check_measurable(found_objectives, chosen, options, energy=limits_energy(limits))
    name = study or f"{model_path.stem}-{Path(space).stem}"
    folder = Path(out).resolve() if out is not None else (Path("edgeprof-search") / name).resolve()
    runs_on = _executor(executor, ray_address, chosen, parallel, say, on_progress)  # a cluster's boards: checked now
    db = open_store(store)
    try:
        settings = Settings(
            model=str(model_path),
            model_sha256=file_sha256(model_path),
            data=data_spec,
            data_sha256=data_sha,
            targets=[t.name for t in chosen],
            objectives=[o.name for o in found_objectives],
            space=searched.to_dict(),
            space_raw=_toml_tables(Path(space)),
            space_file=str(Path(space).resolve()),
            sampler=sampler,
            seed=seed,
            repeat=repeat,
            max_drop=max_drop,
            budget=asdict(limits) if limits is not None else None,
            options=json.loads(json.dumps(asdict(options), default=list)),
            out=str(folder),
            custom_objects=custom_objects,
        )
        old = existing(db.url, name, settings, resume=resume)
        if old is not None:
            settings.baseline, settings.created_at, settings.out = old.baseline, old.created_at, old.out
            folder = Path(old.out)
        base = settings.baseline
        if not base or not Path(base["path"]).is_file() or file_sha256(Path(base["path"])) != base["sha256"]:
            settings.baseline = _stored_baseline(db, settings.model_sha256, test_sha, searched) or _baseline(
                str(model_path), data_spec, folder / "baseline", searched, db, name, custom_objects, say
            )
        opened = open_study(db.url, name, settings, trials)
        ctx = Context(
            study=name,
            model=str(model_path),
            data=data_spec,
            out=str(folder),
            store=db.url,
            targets=chosen,
            options=options,
            repeat=repeat,
            baseline_path=settings.baseline["path"],
            baseline_compression=settings.baseline["compression"],
            custom_objects=custom_objects,
        )
        runner = Runner(
            opened,
            settings,
            ctx,
            runs_on,
            db,
            budget=limits,
            say=say,
            baseline_bytes=Path(settings.baseline["path"]).read_bytes(),
        )
        say(f"study {name} in {db.location}: {settings.sampler}, {trials} trials, objectives "
            f"{', '.join(settings.objectives)}, on {', '.join(settings.targets)} ({runner.executor.name})")  # fmt: skip
        advice = sampler_advice(settings.sampler, trials)
        if advice is not None:
            say(advice)
        runner.run(trials)
        return load_result(db, name)
    finally:
        runs_on.close()
        db.close()


def limits_energy(limits: Any) -> bool:
    if limits is None:
        return False
    return "energy_mj" in limits.limits or any("energy_mj" in t for t in limits.targets.values())


def _toml_tables(path: Path) -> dict[str, Any]:
    from .. import _toml

    return _toml.load(path)


def _executor(kind: str, address: str | None, targets: list[Any], parallel: int | None, say: Say, on_progress: Any):
    from .executors import InProcess, RayExecutor

    if kind == "in-process":
        if address:
            raise StudyError("--ray-address needs --executor ray", "add --executor ray")
        return InProcess(say=say, on_progress=on_progress)
    if kind == "ray":
        return RayExecutor(address, targets, parallel)
    raise StudyError(f"unknown executor {kind!r}", "use in-process or ray")


__all__ = ["DEFAULT_REPEAT", "StudyResult", "export", "limits_energy", "load_result", "search"]
