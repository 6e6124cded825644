"""Does synthetic data help? Training sets that add synthetic images to the real ones or use
them alone (TSTR), the step-matched real-only control, and the intervals that compare them on one
test split over several seeds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from bio_assets.core.cnn.dataset import ClassificationData
from bio_assets.core.cnn.evaluation import ClassifierRuns, SeedRun, train_and_test
from bio_assets.core.cnn.training import LabelledImages, Precision, TrainParams, optimizer_steps
from bio_assets.core.data.resize import resize_uint8
from bio_assets.core.io.records import ImageSet
from bio_assets.core.metrics.classification import majority_rate
from bio_assets.core.metrics.intervals import Interval, accuracy_interval, difference_interval


def synthetic_images(data: ClassificationData, synthetic: dict[str, ImageSet], classes: list[str]) -> LabelledImages:
    """The synthetic images of ``classes`` at the real images' size, labelled with ``data``'s class indices."""
    unknown = sorted(set(classes) - set(data.class_names))
    if unknown:
        raise ValueError(f"synthetic classes {unknown} are not classes of the real data {list(data.class_names)}")
    size = int(data.train.images.shape[1])
    if not classes:
        return LabelledImages(torch.zeros((0, size, size, 3), dtype=torch.uint8), torch.zeros(0, dtype=torch.int64))
    images = torch.cat([resize_uint8(torch.from_numpy(synthetic[name].images), size) for name in classes])
    labels = torch.cat(
        [torch.full((len(synthetic[name]),), data.class_names.index(name), dtype=torch.int64) for name in classes]
    )
    return LabelledImages(images, labels)


def extended(data: ClassificationData, fake: LabelledImages) -> ClassificationData:
    """Real (augmented) train images plus ``fake``; validation and test stay real."""
    train = LabelledImages(torch.cat([data.train.images, fake.images]), torch.cat([data.train.labels, fake.labels]))
    return replace(data, train=train, version=f"{data.version}+{len(fake.labels)}synthetic")


def first_per_class(images: LabelledImages, per_class: int) -> LabelledImages:
    """The first ``per_class`` images of each label, in their order (all of them where ``per_class`` is 0)."""
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0 (0: all), got {per_class}")
    if per_class == 0:
        return images
    keep = (
        torch.cat(
            [torch.nonzero(images.labels == label).flatten()[:per_class] for label in torch.unique(images.labels)]
            or [torch.zeros(0, dtype=torch.int64)]
        )
        .sort()
        .values
    )
    return LabelledImages(images.images[keep], images.labels[keep])


def synthetic_only(data: ClassificationData, fake: LabelledImages) -> ClassificationData:
    """Train on synthetic images, test on the real test images of the classes that have synthetic ones (TSTR)."""
    if len(fake.labels) == 0:
        raise ValueError("TSTR needs synthetic images of at least one class")
    covered = torch.unique(fake.labels)
    keep = torch.isin(data.test.labels, covered)
    test = LabelledImages(data.test.images[keep], data.test.labels[keep])
    return replace(data, train=fake, test=test, version=f"synthetic-only:{len(fake.labels)}")


@dataclass(frozen=True)
class ExtensionStudy:
    """The searched network trained on real + synthetic images, on real images only with as many
    optimizer steps (the control: same seeds, same initializations), optionally on real images
    only with as many epochs (fewer steps), and on synthetic images only (TSTR); every model tested
    on the real test split. ``gain``: extended minus control (None when no synthetic image was
    added); ``class_agreement``: the control's models classifying every synthetic image by the
    class it was generated for (GAN-test)."""

    extended: ClassifierRuns
    extended_data: ClassificationData  # the real + synthetic training set ``extended`` was trained on
    control: ClassifierRuns
    control_equal_epochs: ClassifierRuns | None  # None when turned off or nothing was added (then equal)
    tstr: ClassifierRuns | None  # None without synthetic images or when turned off
    tstr_test_labels: np.ndarray | None  # (T,) the real test labels of the classes with synthetic images
    num_added: int  # synthetic images in the extended training set
    gain: Interval | None
    gain_equal_epochs: Interval | None
    class_agreement: Interval | None  # None without synthetic images to judge
    judged_labels: np.ndarray | None  # (M,) the class each judged synthetic image was generated for

    @property
    def chance(self) -> float:
        """The test split's majority-class rate."""
        return majority_rate(self.extended_data.test.labels.numpy())

    @property
    def tstr_chance(self) -> float | None:
        return None if self.tstr_test_labels is None else majority_rate(self.tstr_test_labels)

    @property
    def agreement_chance(self) -> float | None:
        return None if self.judged_labels is None else majority_rate(self.judged_labels)

    def agreement_by_class(self, class_names: tuple[str, ...]) -> dict[str, float]:
        """Share of each class's synthetic images the control assigns to it, over seeds."""
        if self.class_agreement is None or self.judged_labels is None:
            return {}
        correct = self.control.scored_correct(JUDGED).mean(axis=0)  # (M,)
        return {class_names[k]: float(correct[self.judged_labels == k].mean()) for k in np.unique(self.judged_labels)}


JUDGED = "synthetic"  # the name of the judged synthetic set among the control's scored sets


def extension_study(
    spec: dict,
    data: ClassificationData,
    fake: LabelledImages,
    params: TrainParams,
    *,
    seeds: int,
    device: torch.device,
    precision: Precision = Precision(),
    tstr: bool = True,
    extension_per_class: int = 0,
    equal_epoch_control: bool = True,
    judged: LabelledImages | None = None,
    on_seed: Callable[[str, SeedRun], None] | None = None,
) -> ExtensionStudy:
    """Train ``spec`` on real + ``fake`` (its first ``extension_per_class`` images per class; 0: all)
    for ``params``' epochs; on real images only for the same number of optimizer steps, with the
    same seeds and so the same initializations (the gain then measures the synthetic images, not a
    longer training); with ``equal_epoch_control``, on real images only for the same epochs too;
    and on all of ``fake`` alone (TSTR). ``judged`` (default ``fake``): the synthetic images the
    control classifies by the class they were generated for."""

    def trained(label: str, training_data: ClassificationData, train_params: TrainParams, **extra) -> ClassifierRuns:
        report = (lambda run: on_seed(label, run)) if on_seed is not None else None
        return train_and_test(
            spec, training_data, train_params, seeds=seeds, device=device, precision=precision, on_seed=report,
            **extra,
        )  # fmt: skip

    judged = fake if judged is None else judged
    score = {JUDGED: judged} if len(judged.labels) else {}
    extended_data = extended(data, first_per_class(fake, extension_per_class))
    num_added = len(extended_data.train.labels) - len(data.train.labels)
    steps = optimizer_steps(len(extended_data.train.labels), params)
    control = trained("real only (control, equal steps)", data, replace(params, steps=steps), also_score=score)
    with_synthetic = control if num_added == 0 else trained("real + synthetic", extended_data, params)
    equal_epochs = None
    if equal_epoch_control and num_added:
        equal_epochs = trained("real only (equal epochs)", data, params)
    tstr_runs, tstr_labels = None, None
    if tstr and len(fake.labels):
        tstr_data = synthetic_only(data, fake)
        tstr_runs, tstr_labels = trained("synthetic only (TSTR)", tstr_data, params), tstr_data.test.labels.numpy()
    return ExtensionStudy(
        extended=with_synthetic,
        extended_data=extended_data,
        control=control,
        control_equal_epochs=equal_epochs,
        tstr=tstr_runs,
        tstr_test_labels=tstr_labels,
        num_added=num_added,
        gain=difference_interval(with_synthetic.test_correct(), control.test_correct()) if num_added else None,
        gain_equal_epochs=(
            difference_interval(with_synthetic.test_correct(), equal_epochs.test_correct()) if equal_epochs else None
        ),
        class_agreement=accuracy_interval(control.scored_correct(JUDGED)) if score else None,
        judged_labels=judged.labels.numpy() if score else None,
    )
