"""The search space file and the front's arithmetic, without TensorFlow: bad files are one line naming the step and
the field, a grid holds every distinct recipe once, a trial asks only for the parameters of the steps it uses, and
the noise-aware front, the λ-weighted optimum, the knee and the hypervolume are what their definitions say."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from edgeprof.search import front as fr
from edgeprof.search import space as sp
from edgeprof.search.objectives import ObjectiveError
from edgeprof.search.objectives import parse as parse_objectives
from tests.conftest import run_cli
from tests.test_store import pg_url  # noqa: F401 - the fixture: a fresh PostgreSQL database

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "search").glob("*.toml"))

GOOD = """
seed = 3
[[step]]
kind = "channels"
optional = true
ratio = { low = 0.25, high = 0.75, step = 0.25 }
criterion = ["l1", "l2"]
epochs = 1

[[step]]
kind = "prune"
optional = true
sparsity = { low = 0.5, high = 0.8, step = 0.1 }
exclude = [[], ["dense_1"]]

[[step]]
kind = "quantize"
mode = ["dynamic", "int8"]
"""


def _parse(text: str) -> sp.Space:
    import tomllib

    return sp.parse(tomllib.loads(text), "space.toml")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_space_is_valid(path: Path) -> None:
    space = sp.load(path)
    assert space.steps and space.parameter_names()


BAD = [
    ('[[step]]\nkind = "prun"', "space.toml, step 1: unknown step kind 'prun'"),
    ('[[step]]\nkind = "prune"\nsparsty = 0.5', "step 1 (prune): unknown field(s) sparsty for a prune step"),
    ('[[step]]\nkind = "prune"\nsparsity = { low = 0.9, high = 0.5 }', "sparsity: the range 0.9..0.5 is empty"),
    ('[[step]]\nkind = "prune"\nsparsity = { low = 0.5, high = 1.2 }', "step 1 (prune): sparsity 1.2 is outside"),
    ('[[step]]\nkind = "quantize"\nmode = []', "step 1 (quantize): mode: the list of choices is empty"),
    ('[[step]]\nkind = "quantize"\nmode = ["int8", "int9"]', "unknown quantize mode 'int9'"),
    ('[[step]]\nkind = "prune"\nsparsity = { low = 0.5 }', "sparsity: a range needs low and high"),
    ('[[step]]\nkind = "prune"\nsparsity = { low = 0.5, high = 0.9, stp = 0.1 }', "unknown key(s) stp in a range"),
    ('[[step]]\nkind = "quantize"\n[[step]]\nkind = "prune"', "the quantize step must come last"),
    ('orders = [["prune", "cluster"]]\n[[step]]\nkind = "prune"', "orders names an unknown step 'cluster'"),
    ('[[step]]\nkind = "prune"\nexclude = [["conv2d"], "dense"]', "exclude: mixes layer lists and names"),
    ('[[step]]\nkind = "prune"\n[[step]]\nkind = "prune"', "two steps are named 'prune'"),
    ('sed = 1\n[[step]]\nkind = "prune"', "unknown top-level key(s) sed"),
    ("seed = 1", "has no [[step]] table"),
]


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[b[1][:40] for b in BAD])
def test_a_bad_space_is_one_error_naming_the_step_and_field(text: str, expected: str) -> None:
    with pytest.raises(sp.SpaceError) as caught:
        _parse(text)
    assert expected in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_command_line_says_it_in_one_line_before_anything_runs(tmp_path: Path) -> None:
    space = tmp_path / "space.toml"
    space.write_text('[[step]]\nkind = "prune"\nsparsity = { low = 0.9, high = 0.5 }\n')
    data = tmp_path / "data.npz"  # never read: the space is checked first
    done = run_cli("search", str(space), "--data", str(data), "--space", str(space), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [
        f"edgeprof: error: {space}, step 1 (prune): sparsity: the range 0.9..0.5 is empty (low > high); swap low and "
        "high"
    ]
    assert not (tmp_path / "edgeprof-search").exists() and not (tmp_path / "results.db").exists()


def test_a_grid_holds_every_distinct_recipe_once() -> None:
    space = _parse(GOOD)
    grid = space.grid(seed=0)
    recipes = [json.dumps(space.recipe(params), sort_keys=True) for params in grid]
    # channels: 3 ratios x 2 criteria + off; prune: 4 sparsities x 2 exclude lists + off; quantize: 2 modes
    assert len(recipes) == (3 * 2 + 1) * (4 * 2 + 1) * 2 == len(set(recipes))
    # Optuna's GridSampler would take the product of every parameter, also those of steps left out: more trials
    product = math.prod([2, 3, 2, 2, 4, 2, 2])
    assert product > len(recipes)
    assert space.grid(seed=0) == grid and space.grid(seed=1) != grid  # seeded order


def test_a_continuous_range_is_refused_for_a_grid_with_the_field_named() -> None:
    space = _parse('[[step]]\nkind = "prune"\nsparsity = { low = 0.5, high = 0.9 }')
    with pytest.raises(sp.SpaceError, match=r"prune\.sparsity is a continuous range \(0\.5\.\.0\.9\)"):
        space.grid()


def test_a_trial_asks_only_for_the_steps_it_uses() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = _parse(GOOD)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_off = seen_on = False
    for _ in range(30):
        trial = study.ask()
        recipe = space.suggest(trial)
        kinds = [s["kind"] for s in recipe["step"]]
        assert recipe["seed"] == 3 and kinds[-1] == "quantize"
        if trial.params["prune.use"]:
            seen_on = True
            step = next(s for s in recipe["step"] if s["kind"] == "prune")
            assert step["sparsity"] == trial.params["prune.sparsity"]
            assert step["exclude"] == json.loads(trial.params["prune.exclude"])  # a list again, not its JSON
        else:
            seen_off = True
            assert "prune.sparsity" not in trial.params and "prune" not in kinds
        study.tell(trial, 1.0)
    assert seen_on and seen_off


def test_nsga2_breeds_the_fields_of_optional_steps() -> None:
    """Optuna's NSGA-II crosses over only the parameters every finished trial has. Asked conditionally, an optional
    step's fields drop out of that set as soon as one trial leaves the step out, and are drawn at random for ever:
    NSGA-II was random search on them. edgeprof asks NSGA-II every field (dormant where the step is off)."""
    import optuna

    from edgeprof.search.study import sampler, suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = _parse(GOOD)
    fields = {"channels.ratio", "channels.criterion", "prune.sparsity", "prune.exclude", "quantize.mode"}

    def bred(ask) -> set[str]:
        study = optuna.create_study(directions=["minimize"] * 2, sampler=sampler("nsga2", 0, 24))
        for i in range(12):  # three generations of 4
            trial = study.ask()
            ask(trial)
            study.tell(trial, [float(i % 5), float(-i % 7)])
        probe = study.ask()
        return set(study.sampler.infer_relative_search_space(study, probe))

    assert fields - bred(space.suggest), "the conditional space lost no field: the test's premise does not hold"
    assert fields <= bred(lambda trial: suggest(space, trial, "nsga2"))

    # a dormant field shapes nothing: the recipe and what `search show` lists are those of the steps used
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        recipe = suggest(space, trial, "nsga2")
        assert fields <= set(trial.params)
        shown = space.shaping(trial.params)
        assert space.recipe(shown) == recipe
        assert (
            ("prune.sparsity" in shown) == trial.params["prune.use"] == ("prune" in [s["kind"] for s in recipe["step"]])
        )
        study.tell(trial, 1.0)


def test_differences_name_each_changed_field() -> None:
    old = _parse(GOOD).to_dict()
    new = _parse(GOOD.replace("high = 0.8", "high = 0.9").replace('"dynamic", ', "")).to_dict()
    assert sp.differences(old, new) == [
        "prune.sparsity: 0.5..0.8 step 0.1 → 0.5..0.9 step 0.1",
        "quantize.mode: [dynamic, int8] → [int8]",
    ]
    assert sp.differences(old, old) == []


def test_objectives_are_per_board_when_there_are_several() -> None:
    assert [o.name for o in parse_objectives("accuracy,latency", ["local"])] == ["accuracy_drop", "median_ms"]
    names = [o.name for o in parse_objectives("accuracy_drop,p90,size", ["pi5", "orin"])]
    assert names == ["accuracy_drop", "p90_ms@pi5", "p90_ms@orin", "gzip_kib"]
    with pytest.raises(ObjectiveError, match="unknown objective 'speed'"):
        parse_objectives("accuracy,speed", ["local"])
    with pytest.raises(ObjectiveError, match="accuracy drop alone is no trade-off"):
        parse_objectives("accuracy", ["local"])


# -- the front's arithmetic, on run figures as the store keeps them -------------------------------------------------


def _runs(*medians: float) -> list[dict[str, float]]:
    return [{"median_ms": m, "p90_ms": m * 1.1} for m in medians]


GROUPS = {
    1: _runs(0.98, 1.01, 0.97, 1.00),  # the same speed as 2, within the spread between processes
    2: _runs(0.99, 1.02, 1.03, 1.00),
    3: _runs(0.60, 0.61, 0.59, 0.60),  # really faster
}


def _objectives() -> list:
    return parse_objectives("accuracy_drop,median_ms", ["local"])


def _point(number: int, drop: float, group: int) -> fr.Point:
    median = sorted(r["median_ms"] for r in GROUPS[group])[len(GROUPS[group]) // 2]
    return fr.Point(number, {"accuracy_drop": drop, "median_ms": median}, drop, median, True, {"local": group})


def test_the_front_rules_out_only_what_the_measurements_can_tell_apart() -> None:
    judge = fr.Judge(_objectives(), lambda group: GROUPS[group])
    a = _point(0, 0.5, 1)  # as fast as b within noise (its median is even lower), but 0.3 pp worse: ruled out
    b = _point(1, 0.2, 2)
    c = _point(2, 2.0, 3)  # measurably faster, less accurate: a trade-off, kept
    assert a.values["median_ms"] < b.values["median_ms"]  # a plain Pareto front would keep a for its speed
    assert [p.number for p in fr.plain_front([a, b, c], _objectives())] == [0, 1, 2]
    assert [p.number for p in fr.front([a, b, c], judge)] == [1, 2]
    infeasible = fr.Point(3, {"accuracy_drop": 0.0, "median_ms": 0.1}, 0.0, 0.1, False, {"local": 3})
    assert [p.number for p in fr.front([a, b, c, infeasible], judge)] == [1, 2]


def test_lambda_optimum_curve_and_knee() -> None:
    pts = [
        fr.Point(0, {}, 0.0, 1.00),
        fr.Point(1, {}, 0.1, 0.60),  # the knee: most of the gain for little accuracy
        fr.Point(2, {}, 1.0, 0.50),
        fr.Point(3, {}, 3.0, 0.45),
    ]
    assert fr.weighted_optimum(pts, 0.01).number == 0
    assert fr.weighted_optimum(pts, 1.0).number == 1  # 0.1 + 0.6 < 0.0 + 1.0 and < 1.0 + 0.5
    assert fr.weighted_optimum(pts, 100.0).number == 3
    curve = fr.lambda_curve(pts)
    assert [seg["trial"] for seg in curve] == [0, 1, 2, 3]
    assert curve[0]["from"] == pytest.approx(0.01) and curve[-1]["to"] == pytest.approx(1000)
    assert fr.knee(pts).number == 1


def test_hypervolume_is_the_dominated_area() -> None:
    assert fr.hypervolume([(1.0, 1.0)], (2.0, 2.0)) == pytest.approx(1.0)
    # two staircase points: 1x2 + 1x1 (the overlap counted once)
    assert fr.hypervolume([(0.0, 1.0), (1.0, 0.0)], (2.0, 2.0)) == pytest.approx(3.0)
    assert fr.hypervolume([(0.0, 1.0), (1.0, 0.0), (1.5, 1.5)], (2.0, 2.0)) == pytest.approx(3.0)  # dominated
    assert fr.hypervolume([(3.0, 0.0)], (2.0, 2.0)) == 0.0  # beyond the reference
    assert fr.hypervolume([(0.0, 0.0, 0.0)], (1.0, 2.0, 3.0)) == pytest.approx(6.0)


def test_a_power_meter_on_the_host_makes_energy_measurable_and_one_that_fails_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local target has no power sensor here; a metering plug on the host ([targets.NAME.meter]) measures its
    energy, so the search's check lets the energy objective through, and names the plug when it does not answer."""
    from edgeprof.profile import ProfileOptions
    from edgeprof.search.objectives import check_measurable
    from edgeprof.targets import resolve_target
    from tests.helpers.fake_meter import FakeMeter, meter_config

    objectives = parse_objectives("accuracy_drop,energy_mj", ["bench"])
    with FakeMeter("shelly", rate=10) as meter:
        monkeypatch.setenv("EDGEPROF_CONFIG", str(meter_config(tmp_path / "edgeprof.toml", meter, workdir=tmp_path)))
        meter.wait_readings()
        check_measurable(objectives, [resolve_target("bench")], ProfileOptions())  # no error: the plug answers
        meter.control(mode="garbage")
        with pytest.raises(ObjectiveError) as caught:
            check_measurable(objectives, [resolve_target("bench")], ProfileOptions())
    line = str(caught.value)
    assert line.startswith("cannot measure energy per inference on bench: its power meter does not answer (")
    assert "no power sensor on the board (" in line and "\n" not in line


def test_a_study_lives_in_the_stores_own_postgresql_database(pg_url: str) -> None:  # noqa: F811
    """Optuna's tables beside edgeprof's in one PostgreSQL database (a team's shared store): created, listed, and
    a resume with another space refused, naming the field."""
    import dataclasses

    import tomllib
    from sqlalchemy import inspect

    from edgeprof.search.study import Settings, StudyError, existing, names, open_study
    from edgeprof.store import open_store

    space = _parse(GOOD)
    settings = Settings(
        model="model.keras", model_sha256="0" * 64, data="data.npz", data_sha256=None, targets=["local"],
        objectives=["accuracy_drop", "median_ms"], space=space.to_dict(), space_raw=tomllib.loads(GOOD),
        space_file="space.toml", sampler="grid", seed=0, repeat=2, max_drop=1.0, budget=None, options={}, out="out",
    )  # fmt: skip
    with open_store(pg_url) as db:
        assert existing(db.url, "cnn-space", settings, resume=False) is None
        study = open_study(db.url, "cnn-space", settings, trials=10)
        assert len(study.get_trials()) == len(space.grid()) == 126  # the grid's recipes, queued in the database
        assert {"profiles", "compressions", "studies", "trials"} <= set(inspect(db.engine).get_table_names())
        assert [(s["name"], s["states"]) for s in names(db.url)] == [("cnn-space", {"waiting": 126})]
        changed = dataclasses.replace(settings, space=_parse(GOOD.replace("high = 0.8", "high = 0.9")).to_dict())
        with pytest.raises(StudyError) as caught:
            existing(db.url, "cnn-space", changed, resume=True)
        assert "space: prune.sparsity: 0.5..0.8 step 0.1 → 0.5..0.9 step 0.1" in str(caught.value)
        with pytest.raises(StudyError, match="already exists"):
            existing(db.url, "cnn-space", settings, resume=False)


def test_a_ray_address_nobody_answers_on_is_one_line_before_anything_trains(tmp_path: Path) -> None:
    space = tmp_path / "space.toml"
    space.write_text('[[step]]\nkind = "quantize"\nmode = ["int8"]\n')
    done = run_cli(
        "search", str(space), "--data", "builtin:digits", "--space", str(space), "--executor", "ray",
        "--ray-address", "127.0.0.1:1", cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [
        "edgeprof: error: nothing answers at the Ray address 127.0.0.1:1 (Connection refused); start the cluster's "
        "head there (ray start --head --port PORT) or fix --ray-address"
    ]
    assert not (tmp_path / "edgeprof-search").exists()
