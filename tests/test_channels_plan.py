"""The arithmetic of the channels step, without TensorFlow: counts kept, sensitivity allocation, recipe checks."""

from __future__ import annotations

import pytest

from edgeprof.compress.channels import ChannelsStep, kept_count
from edgeprof.compress.recipe import PruneStep, QuantizeStep, Recipe
from edgeprof.compress.sensitivity import allocate
from edgeprof.errors import RecipeError


def test_kept_counts_round_to_multiples_where_the_layer_allows() -> None:
    assert kept_count(32, 0.5, 1) == 16
    assert kept_count(96, 0.4, 8) == 56  # 57.6 → the nearest multiple of 8
    assert kept_count(96, 0.4, 1) == 58
    assert kept_count(6, 0.5, 8) == 3  # narrower than round_to: not rounded
    assert kept_count(16, 0.97, 1) == 0  # the step refuses this with the layer's name


def test_allocation_prunes_insensitive_groups_harder_and_meets_the_total() -> None:
    flat = [(0.25, 0.0), (0.5, 0.5), (0.75, 2.0)]
    steep = [(0.25, 10.0), (0.5, 40.0), (0.75, 70.0)]
    ratios = allocate({"wide": (96, flat), "bottleneck": (8, steep)}, 0.4)
    assert ratios["bottleneck"] < ratios["wide"]
    assert (96 * ratios["wide"] + 8 * ratios["bottleneck"]) / 104 == pytest.approx(0.4, abs=1e-3)
    # more than the insensitive groups can give at no loss: the threshold rises until the total is met
    ratios = allocate({"wide": (10, flat), "bottleneck": (10, steep)}, 0.5)
    assert (ratios["wide"] + ratios["bottleneck"]) / 2 == pytest.approx(0.5, abs=1e-3)


def test_recipes_refuse_what_cannot_work_with_the_fix() -> None:
    with pytest.raises(RecipeError, match="would leave those layers without channels"):
        Recipe.from_dict({"step": [{"kind": "channels", "ratios": {"conv*": 1.0}}]})
    with pytest.raises(RecipeError, match="unknown criterion"):
        Recipe.from_dict({"step": [{"kind": "channels", "criterion": "random"}]})
    with pytest.raises(RecipeError, match="float models only"):
        Recipe(steps=[PruneStep(sparsity=0.8, policy="xnnpack"), QuantizeStep(mode="dynamic")])
    with pytest.raises(RecipeError, match="latency must be true or false"):
        Recipe.from_dict({"latency": "yes"})
    recipe = Recipe.from_dict({"latency": False, "step": [{"kind": "channels", "ratio": 0.5, "round_to": 8}]})
    assert isinstance(recipe.steps[0], ChannelsStep) and not recipe.wants_latency
    assert Recipe(steps=[ChannelsStep()]).wants_latency and not Recipe(steps=[QuantizeStep()]).wants_latency
    assert Recipe.from_dict(recipe.to_dict()).to_dict() == recipe.to_dict()
