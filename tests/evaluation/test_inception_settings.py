"""Where Inception weights come from reaches every place that may resolve the extractor: the GAN's
validation FID takes eval.inception_weights / eval.inception_download, and class labels (the data
set's own classifier only) never try to resolve Inception."""

import torch
from hydra.utils import instantiate

from genbench.evaluation.labels import classify
from tests.conftest import compose_config, datamodule


def test_validation_fid_takes_the_evaluations_inception_settings(tmp_path):
    weights = tmp_path / "pt_inception.pth"
    cfg = compose_config(
        ["model=gan", f"eval.inception_weights={weights}", "eval.inception_download=false"]
    )
    callback = instantiate(cfg.callbacks.validation_fid)
    assert callback.inception_weights == str(weights)
    assert callback.inception_download is False


def test_class_labels_of_an_inception_data_set_are_none_without_resolving_inception(tmp_path):
    """Digits scored in Inception features: no classifier to label classes, and no attempt to
    find Inception weights (there are none here; resolving them would raise)."""
    dm = datamodule("digits", feature_extractor="inception")
    samples = torch.zeros(4, 1, 8, 8, dtype=torch.long)
    assert classify(samples, dm, tmp_path) is None
    labels, confidence = classify(samples, datamodule("digits"), tmp_path)
    assert labels.shape == (4,) and confidence.shape == (4,)
