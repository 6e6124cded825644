"""Shared inputs and settings of the gan_search assets: GAN image shapes from the profile, the
training images, real reference images and the FID scorers."""

import hashlib
import time

import dagster as dg
import torch
from pydantic import Field

from bio_assets.assets.common import RunSettings, run_settings
from bio_assets.core.gan.diffaugment import POLICIES
from bio_assets.core.gan.scoring import FidScorer, gan_images
from bio_assets.core.gan.training import GanImages, GanRecipe
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.metrics.extractors import EXTRACTOR_NAMES
from bio_assets.core.profiles import profile_help
from bio_assets.core.registry import DatasetEntry
from resources.feature_extractor import FeatureExtractorResource

GROUP = "gan_search"
# The assets whose GAN shape settings GanShapeConfig holds.
SHARED_BY = ("generator", "discriminator", "gan_baselines")
SHAPE_FIELDS = ("image_size", "generator_width", "discriminator_width", "batch_size")
RECIPE_FIELDS = (
    "generator_lr",
    "discriminator_lr",
    "conditioning_lr_multiplier",
    "auxiliary_classifier_weight",
)  # the searched pair's only


class GanShapeConfig(dg.Config):
    image_size: int | None = Field(
        default=None,
        description=f"GAN image size, 32 or 64 ({profile_help('trained_gan', 'image_size', *SHARED_BY)})",
    )
    generator_width: int | None = Field(
        default=None,
        description="generator channels at its first resolution "
        f"({profile_help('trained_gan', 'generator_width', *SHARED_BY)})",
    )
    discriminator_width: int | None = Field(
        default=None,
        description="discriminator channels at full size "
        f"({profile_help('trained_gan', 'discriminator_width', *SHARED_BY)})",
    )
    batch_size: int | None = Field(default=None, description=profile_help("trained_gan", "batch_size", *SHARED_BY))
    extractor: str = Field(
        default="biocnn1", description=f"features for the FID that drives search and curves: one of {EXTRACTOR_NAMES}"
    )
    generator_lr: float | None = Field(
        default=None,
        description="the searched pair's (the baselines keep their papers'); unset: the profile's "
        f"({profile_help('trained_gan', 'generator_lr', 'generator', 'discriminator')})",
    )
    discriminator_lr: float | None = Field(
        default=None,
        description="the searched pair's; unset: the profile's "
        f"({profile_help('trained_gan', 'discriminator_lr', 'generator', 'discriminator')})",
    )
    conditioning_lr_multiplier: float | None = Field(
        default=None,
        description="the generator's conditional-BatchNorm gains and biases learn at this multiple of generator_lr "
        "(unset: the profile's; "
        f"{profile_help('trained_gan', 'conditioning_lr_multiplier', 'generator', 'discriminator')})",
    )
    auxiliary_classifier_weight: float | None = Field(
        default=None,
        description="weight of an AC-GAN class loss through a class head on the discriminator; 0 turns it off "
        "(unset: the profile's; paper 0 is the source's projection discriminator alone; "
        f"{profile_help('trained_gan', 'auxiliary_classifier_weight', 'generator', 'discriminator')})",
    )
    ema_decay: float = Field(default=0.999, description="EMA of the generator's weights; 0 turns it off")
    diffaugment: list[str] = Field(
        default_factory=lambda: list(POLICIES), description="DiffAugment policies on every image D sees"
    )
    seed: int = 0

    def recipe(self, values: RunSettings) -> GanRecipe:
        """The searched GAN's training recipe (hinge loss, Adam) from this config and the resolved
        ``values`` (which hold RECIPE_FIELDS)."""
        return GanRecipe(
            generator_lr=values["generator_lr"],
            discriminator_lr=values["discriminator_lr"],
            conditioning_lr_multiplier=values["conditioning_lr_multiplier"],
            auxiliary_classifier_weight=values["auxiliary_classifier_weight"],
            diffaugment=tuple(self.diffaugment),
            ema_decay=self.ema_decay,
        )

    def settings(
        self, context: dg.AssetExecutionContext, entry: DatasetEntry, asset_name: str, extra: tuple[str, ...] = ()
    ) -> RunSettings:
        """The GAN shape (and ``extra`` fields) this run uses: run config, dataset settings, profile."""
        return run_settings(context, entry, asset_name, {f: getattr(self, f) for f in (*SHAPE_FIELDS, *extra)})


def training_images(augmented: dict, size: int) -> GanImages:
    """The augmented train split of every class at the GAN's size."""
    return gan_images(augmented, size)


def reference_images(splits: dict, size: int) -> GanImages:
    """The real train split (no augmentation) at the GAN's size, labelled: what FID compares against."""
    return gan_images({name: s.train for name, s in splits.items()}, size)


def data_version(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def scorers(
    resource: FeatureExtractorResource,
    extractors: ModelWeights,
    real: GanImages,
    *,
    samples: int,
    device: torch.device,
    seed: int,
) -> dict[str, FidScorer]:
    """One FID scorer per available extractor, all against the same real images, with generated
    classes in the real images' proportions."""
    return {
        name: FidScorer.against(
            resource.serve(name, extractors, device),
            real.images,
            samples,
            real.num_classes,
            seed,
            real_labels=real.labels,
        )
        for name in resource.available()
    }


def fid_metadata(fids: dict, resource: FeatureExtractorResource) -> dict:
    """``fid_<extractor>`` values plus the provenance of each (sample counts, resize mode)."""
    metadata = {f"fid_{name}": round(value.value, 4) for name, value in fids.items()}
    metadata["fid_provenance"] = dg.MetadataValue.json({name: value.to_json() for name, value in fids.items()})
    metadata["inception_v3"] = resource.inception_status()
    return metadata


def step_logger(context: dg.AssetExecutionContext, total: int, started: float):
    every = max(total // 10, 1)

    def log(step: int, losses: dict[str, float]) -> None:
        if step % every == 0 or step == total:
            rate = step / max(time.perf_counter() - started, 1e-9)
            context.log.info(
                f"step {step}/{total}: D {losses['discriminator']:.3f}, G {losses['generator']:.3f} ({rate:.1f} it/s "
                "this run)"
            )

    return log
