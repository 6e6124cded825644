"""The data-efficiency study's settings: the graph's own settings wherever the study repeats a
stage of the graph, and the study's own (``PROFILE_SETTINGS[p]["data_efficiency"]``), each looked
up through ``setting(asset, field)`` (a profile's value, or a dataset's where it sets one)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bio_assets.core.cnn.search import CnnSearchRequest
from bio_assets.core.cnn.training import TrainParams
from bio_assets.core.data.augment import AugmentParams
from bio_assets.core.gan.training import GanRecipe
from bio_assets.core.search.evolution import EvolutionParams
from bio_assets.core.studies.data_efficiency import StudyGan, StudySettings

RECIPE_FIELDS = ("generator_lr", "discriminator_lr", "conditioning_lr_multiplier", "auxiliary_classifier_weight")
GAN_SHAPE = ("image_size", "generator_width", "discriminator_width", "batch_size", "iterations")


Setting = Callable[[str, str], object]  # (asset name, field) -> value


def _search(
    setting: Setting, asset: str, searching: str, *, channels: int, repeats: int, seed: int
) -> CnnSearchRequest:
    value = lambda field: setting(asset, field)  # noqa: E731
    population = int(value("population_size"))
    evolution = EvolutionParams(
        population, int(value("cycles")), min(int(value("sample_size")), population), 0.05, "aging", seed
    )
    training = TrainParams(
        epochs=int(value("epochs")), batch_size=64, optimizer="adam", learning_rate=1e-3,
        input_size=int(value("input_size")) or None, seed=seed,
    )  # fmt: skip
    fixed = {"fixed_cell": "1-0"} if searching == "macro" else {}  # replaced by each subset's searched cell
    return CnnSearchRequest(
        searching=searching, evolution=evolution, training=training, channels=channels, fitness_repeats=repeats,
        **fixed,
    )  # fmt: skip


def study_settings(
    setting: Setting,
    sizes: Sequence[int],
    *,
    generator: str,
    discriminator: str,
    profile: str,
    seed: int = 0,
    **overrides: object,
) -> StudySettings:
    """``overrides``: any of the ``data_efficiency`` profile fields (``seeds``, ``epochs``,
    ``fitness_repeats``, ``select_on_validation``, ``min_synthetic_confidence``, ``baselines``)."""
    study = {k: setting("data_efficiency", k) for k in STUDY_FIELDS}
    unknown = sorted(set(overrides) - set(study))
    if unknown:
        raise ValueError(f"unknown study settings {unknown}; known: {sorted(study)}")
    study.update(overrides)
    repeats = int(study["fitness_repeats"])
    classifier = TrainParams(
        epochs=int(study["epochs"]), batch_size=64, optimizer="adam", learning_rate=1e-3,
        input_size=int(setting("classifier", "input_size")) or None, seed=seed,
        select_on_validation=bool(study["select_on_validation"]),
    )  # fmt: skip
    trained = {field: setting("trained_gan", field) for field in (*GAN_SHAPE, *RECIPE_FIELDS)}
    gan = StudyGan(
        generator=generator,
        discriminator=discriminator,
        **{field: int(trained[field]) for field in GAN_SHAPE},
        recipe=GanRecipe(**{field: float(trained[field]) for field in RECIPE_FIELDS}),
        images_per_class=int(setting("synthetic_dataset", "images_per_class")),
    )
    return StudySettings(
        sizes=tuple(int(s) for s in sizes),
        seeds=int(study["seeds"]),
        augment=AugmentParams(target_per_class=int(setting("augmented_dataset", "target_per_class"))),
        cell_search=_search(setting, "searched_cell", "cell", channels=16, repeats=repeats, seed=seed),
        macro_search=_search(setting, "macro_architecture", "macro", channels=32, repeats=repeats, seed=seed),
        classifier=classifier,
        classifier_channels=32,
        gan=gan,
        synthetic_per_class=int(setting("extended_classifier", "synthetic_per_class")),
        min_synthetic_confidence=float(study["min_synthetic_confidence"]),
        baselines=tuple(study["baselines"]),
        baseline_profile=profile,
        seed=seed,
    )


STUDY_FIELDS = ("seeds", "epochs", "fitness_repeats", "select_on_validation", "min_synthetic_confidence", "baselines")
