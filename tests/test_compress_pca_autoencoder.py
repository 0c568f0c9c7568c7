"""The linear-transform steps on real data (scikit-learn's digits): ``pca`` (an input projection folded into the
first Dense, or placed in front of a convolution) and ``autoencoder`` (a bottleneck on an intermediate feature,
its decoder folded into the next layer), each with its measured effect checked against the exported TFLite file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeprof.tflite.macs import subgraph_macs
from tests.helpers.compress_jobs import Run, run_jobs

pytestmark = pytest.mark.slow

ONE_SAMPLE = 1 / 360 + 1e-9  # the digits' test split has 360 samples


@pytest.fixture(scope="module")
def runs(models: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    cnn, data = str(models / "cnn.keras"), str(models / "digits.npz")  # Conv2D 8 → Flatten (512) → Dense 32 → 10

    def job(*steps: dict, **extra: object) -> dict:
        return {"model": cnn, "data": data, "recipe": {"step": list(steps)}, **extra}

    return run_jobs(
        tmp_path_factory.mktemp("linear"),
        {
            "pca_folded": job({"kind": "pca", "energy": 0.9}, case="pca_mlp"),
            "pca_front": job({"kind": "pca", "components": 16, "epochs": 1}),
            "ae_dense": job({"kind": "autoencoder", "layer": "flatten", "size": 16}),
            "ae_conv": job({"kind": "autoencoder", "layer": "conv", "size": 8, "epochs": 1}, case="conv_functional"),
            "ae_no_saving": job({"kind": "autoencoder", "layer": "dense", "size": 16}),
        },
        runner="tests.helpers.custom_runs",
    )


def _tflite_macs(run: Run) -> int:
    model = run.tflite
    return sum(m or 0 for m in subgraph_macs(model.main))


def _input_shape(run: Run) -> tuple[int, ...]:
    model = run.tflite
    return model.main.tensors[model.main.inputs[0]].shape


def test_pca_folds_into_the_first_dense_and_keeps_the_variance_asked_for(runs: dict[str, Run], models: Path) -> None:
    run = runs["pca_folded"]
    effect = run.step("pca")["effect"]
    k = effect["components"]
    # The fewest components that explain 90 % of the training inputs' variance, as scikit-learn counts them.
    from sklearn.decomposition import PCA

    x = np.load(models / "digits.npz")["x_train"].reshape(-1, 64)
    ratio = np.cumsum(PCA().fit(x).explained_variance_ratio_)
    assert k == int(np.searchsorted(ratio, 0.9) + 1) and k < 64
    assert effect["explained_variance"] >= 0.9 and abs(effect["explained_variance"] - ratio[k - 1]) < 1e-6
    assert effect["placement"] == "folded" and effect["layer"] == "dense" and effect["saves_parameters"]
    # Flatten → Dense 128 → Dense 10 became Flatten → Dense k (no bias) → Dense 128 → Dense 10.
    assert effect["params_before"] == 64 * 128 + 128 + 128 * 10 + 10
    assert effect["params_after"] == 64 * k + k * 128 + 128 + 128 * 10 + 10
    assert effect["macs_before"] == 64 * 128 + 128 * 10
    assert effect["macs_after"] == _tflite_macs(run) == 64 * k + k * 128 + 128 * 10
    # The exported model takes the original 8×8×1 input, and scores what the effect says.
    assert _input_shape(run) == (1, 8, 8, 1)
    manifest = run.manifest
    accuracy = manifest["tflite"]["metrics"]["accuracy"]
    assert abs(accuracy - effect["metrics_after"]["accuracy"]) <= ONE_SAMPLE
    assert accuracy >= manifest["source"]["metrics"]["accuracy"] - 0.05
    assert f"{k} of 64 components" in run.step("pca")["effect_text"]


def test_pca_in_front_of_a_convolution_says_it_saves_nothing(runs: dict[str, Run]) -> None:
    run = runs["pca_front"]
    effect = run.step("pca")["effect"]
    assert effect["placement"] == "front" and not effect["saves_parameters"]
    assert effect["params_after"] - effect["params_before"] == 2 * 64 * 16 + 64  # projection + reconstruction
    assert run.step("pca")["effect_text"].startswith("no saving: the first weighted layer is Conv2D 'conv2d'")
    assert _input_shape(run) == (1, 8, 8, 1)
    assert run.manifest["tflite"]["metrics"]["accuracy"] > 0.8


def test_autoencoder_after_flatten_shrinks_the_big_dense(runs: dict[str, Run]) -> None:
    run = runs["ae_dense"]
    effect = run.step("autoencoder")["effect"]
    assert (effect["size"], effect["features"], effect["folded_into"]) == (16, 512, "dense")
    # Dense 512×32 became encoder 512×16 (+16 bias) and the decoder folded into Dense 16×32.
    assert effect["params_before"] - effect["params_after"] == 512 * 32 - (512 * 16 + 16 + 16 * 32)
    assert effect["macs_after"] == _tflite_macs(run) < effect["macs_before"]
    assert 0 < effect["reconstruction_error_test"] < 0.2
    accuracy = run.manifest["tflite"]["metrics"]["accuracy"]
    assert abs(accuracy - effect["metrics_after"]["accuracy"]) <= ONE_SAMPLE
    assert accuracy >= run.manifest["source"]["metrics"]["accuracy"] - 0.05
    assert _input_shape(run) == (1, 8, 8, 1)


def test_autoencoder_on_feature_maps_uses_1x1_convolutions(runs: dict[str, Run]) -> None:
    run = runs["ae_conv"]
    effect = run.step("autoencoder")["effect"]
    # conv → max pooling → the 1×1 conv: the bottleneck reads the pooled 16-channel maps.
    assert (effect["size"], effect["features"], effect["folded_into"]) == (8, 16, "pointwise")
    assert effect["feature_layer"] == "pool"
    assert effect["params_before"] - effect["params_after"] == 16 * 32 - (16 * 8 + 8 + 8 * 32)
    assert effect["macs_after"] == _tflite_macs(run) < effect["macs_before"]
    convs = [row for row in run.manifest["layers"] if row["type"] == "Conv2D"]
    assert [row["name"] for row in convs] == ["conv", "pointwise_bottleneck", "pointwise"]
    assert run.manifest["tflite"]["metrics"]["accuracy"] > 0.8


def test_a_bottleneck_that_would_not_save_weights_is_refused_before_training(runs: dict[str, Run]) -> None:
    error = runs["ae_no_saving"].error
    assert "a bottleneck of 16 on the 32 features into 'dense_1' would not save weights" in error
    assert "use size ≤ 7" in error


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[step]]\nkind = "pca"\nenergy = 0\n', "energy must be in (0, 1]"),
        ('[[step]]\nkind = "pca"\ncomponents = 0\n', "components must be ≥ 1"),
        ('[[step]]\nkind = "pca"\nlayers = ["dense"]\n', "acts on the model's input"),
        ('[[step]]\nkind = "autoencoder"\nsize = 8\n', "an autoencoder step needs a layer"),
        ('[[step]]\nkind = "autoencoder"\nlayer = "f"\nsize = 8\nratio = 0.1\n', "give size or ratio, not both"),
        ('[[step]]\nkind = "autoencoder"\nlayer = "f"\nratio = 1.5\n', "ratio must be in (0, 1)"),
    ],
)
def test_bad_pca_and_autoencoder_recipes_are_refused(tmp_path: Path, text: str, message: str) -> None:
    from edgeprof.compress import Recipe
    from edgeprof.errors import RecipeError

    (tmp_path / "recipe.toml").write_text(text)
    with pytest.raises(RecipeError) as caught:
        Recipe.from_toml(tmp_path / "recipe.toml")
    assert message in str(caught.value)


def test_pca_and_autoencoder_recipes_parse_with_their_defaults(tmp_path: Path) -> None:
    from edgeprof.compress import AutoencoderStep, PCAStep, Recipe

    (tmp_path / "recipe.toml").write_text(
        '[[step]]\nkind = "pca"\ncomponents = 12\nepochs = 3\n'
        '[[step]]\nkind = "autoencoder"\nlayer = "flatten"\nactivation = "relu"\n'
    )
    pca, autoencoder = Recipe.from_toml(tmp_path / "recipe.toml").steps
    assert isinstance(pca, PCAStep) and (pca.components, pca.energy, pca.training.epochs) == (12, 0.95, 3)
    assert isinstance(autoencoder, AutoencoderStep)
    assert (autoencoder.size, autoencoder.ratio, autoencoder.pretrain_epochs) == (None, None, 5)
    assert autoencoder.describe() == "autoencoder 25% after flatten"
