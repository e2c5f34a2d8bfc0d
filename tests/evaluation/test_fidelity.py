"""Fidelity metrics: each number against an independent numpy/scipy computation on the same
features and against torch_fidelity.calculate_metrics on the same inputs; the reference cache;
the extractors (explicit registration, shipped classifier, first-use training, InceptionV3 with a
random weights file, raw coordinates). CPU only, no network."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch_fidelity
from scipy import linalg
from scipy.spatial.distance import cdist
from scipy.special import log_softmax, softmax

from genbench.core.hashing import file_hash, tensor_hash
from genbench.core.spec import DataSpec
from genbench.data import DigitsDataModule, TensorDataModule
from genbench.evaluation import classifier as clf
from genbench.evaluation import extractors as ex
from genbench.evaluation import inception
from genbench.evaluation.features import FeatureSet, TensorSamples, reference_cache_name
from genbench.evaluation.reference import RealData
from genbench.evaluation.sample_metrics import compute_fidelity, score_samples
from tests.conftest import datamodule, eval_settings, extractor, fidelity_kwargs, loader_settings

SEED = 7


def moons():
    """A small moons data set (conf/dataset/moons.yaml, fewer examples)."""
    return datamodule("moons", num_train=500, num_val=10, num_test=400, seed=3)


@pytest.fixture(scope="module")
def digits():
    return datamodule("digits")


@pytest.fixture(scope="module")
def classifier(digits):
    return extractor(digits, eval_settings(cache_dir="/nonexistent"))  # shipped: no cache needed


def classifier_features(extractor, x):
    net, k = clf.build_classifier(clf.load_classifier(extractor.weights_path))
    with torch.no_grad():
        f, logits = net(x.float() / (k - 1))
    return f.double().numpy(), logits.double().numpy()


def frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def unbiased_mmd2_poly(x, y):
    d = x.shape[1]
    kxx, kyy, kxy = [(u @ v.T / d + 1) ** 3 for u, v in ((x, x), (y, y), (x, y))]
    m = len(x)
    off = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))  # noqa: E731
    return off(kxx) + off(kyy) - 2 * kxy.mean()


def kid(a, b, subsets, size, seed):
    rng = np.random.RandomState(seed)  # the same draws torch-fidelity makes: a's subset, then b's
    vals = []
    for _ in range(subsets):
        ia = rng.choice(len(a), size, replace=False)
        ib = rng.choice(len(b), size, replace=False)
        vals.append(unbiased_mmd2_poly(a[ia], b[ib]))
    return np.mean(vals), np.std(vals)


def inception_score(logits, splits, seed):
    logits = logits[np.random.RandomState(seed).permutation(len(logits))]
    n, scores = len(logits), []
    for i in range(splits):
        part = logits[i * n // splits : (i + 1) * n // splits]
        p, log_p = softmax(part, axis=1), log_softmax(part, axis=1)
        kl = (p * (log_p - np.log(p.mean(0, keepdims=True)))).sum(1).mean()
        scores.append(np.exp(kl))
    return np.mean(scores), np.std(scores)


def precision_recall(gen, real, k):
    def radii(a):  # distance to the k-th nearest other point (column 0 is the point itself)
        return np.sort(cdist(a, a), axis=1)[:, k]

    d = cdist(gen, real)
    precision = (d <= radii(real)[None, :]).any(1).mean()
    recall = (d.T <= radii(gen)[None, :]).any(1).mean()
    return precision, recall


def test_digits_metrics_equal_direct_computation(digits, classifier):
    gen = digits.split("train")[0][:300]
    real = digits.split("test")[0]
    kw = dict(kid_subsets=5, kid_subset_size=100, isc_splits=4, prc_neighborhood=3)
    settings = eval_settings(bootstrap_resamples=0, **kw)
    m = compute_fidelity(gen, real, classifier, seed=SEED, **fidelity_kwargs(settings))

    fg, lg = classifier_features(classifier, gen)
    fr, _ = classifier_features(classifier, real)
    fid = frechet(fg, fr)
    assert m["fid"] == pytest.approx(fid, rel=1e-4)  # relative tolerance 1e-4
    kid_mean, kid_std = kid(fg, fr, 5, 100, SEED)
    assert m["kid_mean"] == pytest.approx(kid_mean, rel=1e-4)
    assert m["kid_std"] == pytest.approx(kid_std, rel=1e-4)
    is_mean, is_std = inception_score(lg, 4, SEED)
    assert m["is_mean"] == pytest.approx(is_mean, rel=1e-4)
    assert m["is_std"] == pytest.approx(is_std, rel=1e-4)
    precision, recall = precision_recall(fg, fr, 3)
    assert m["precision"] == pytest.approx(precision, abs=1e-6)
    assert m["recall"] == pytest.approx(recall, abs=1e-6)
    assert 0 < m["fid"] and 1 < m["is_mean"] <= 10


def test_identical_sets_score_perfectly(digits, classifier):
    x = digits.split("test")[0]
    settings = eval_settings(kid_subsets=3, kid_subset_size=100)
    m = compute_fidelity(x, x, classifier, seed=SEED, **fidelity_kwargs(settings))
    fr, _ = classifier_features(classifier, x)
    assert abs(m["fid"]) < 1e-6 * np.trace(np.cov(fr, rowvar=False))
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["coverage"] == 1.0


@pytest.mark.parametrize("points", [False, True])
def test_metrics_equal_torch_fidelity_calculate_metrics(digits, classifier, points):
    """Features once + torch-fidelity's feature-level functions == its all-in-one entry point."""
    if points:
        dm = datamodule("moons", num_train=300, num_val=10, num_test=250, seed=3)
        features, gen, real = extractor(dm), dm.split("train")[0], dm.split("test")[0]
    else:
        features, gen, real = classifier, digits.split("train")[0][:300], digits.split("test")[0]
    kw = dict(kid_subsets=7, kid_subset_size=200, isc_splits=4, prc_neighborhood=3)
    settings = eval_settings(bootstrap_resamples=0, **kw)
    ours = compute_fidelity(gen, real, features, seed=SEED, **fidelity_kwargs(settings))
    theirs = torch_fidelity.calculate_metrics(
        input1=TensorSamples(features.prepare(gen)),
        input2=TensorSamples(features.prepare(real)),
        cache=False,
        cuda=False,
        feature_extractor=features.name,
        feature_extractor_weights_path=features.weights_path,
        fid=True,
        kid=True,
        prc=True,
        isc=features.has_logits,
        rng_seed=SEED,
        save_cpu_ram=True,
        verbose=False,
        **kw,
    )
    names = {
        torch_fidelity.KEY_METRIC_FID: "fid",
        torch_fidelity.KEY_METRIC_KID_MEAN: "kid_mean",
        torch_fidelity.KEY_METRIC_KID_STD: "kid_std",
        torch_fidelity.KEY_METRIC_PRECISION: "precision",
        torch_fidelity.KEY_METRIC_RECALL: "recall",
        torch_fidelity.KEY_METRIC_ISC_MEAN: "is_mean",
        torch_fidelity.KEY_METRIC_ISC_STD: "is_std",
    }
    assert len(theirs) == (8 if features.has_logits else 6)  # + f_score
    for key, value in theirs.items():
        if key in names:
            assert ours[names[key]] == pytest.approx(value, rel=1e-12), key


def test_extractors_are_registered_by_resolve_extractor_not_by_import():
    s = eval_settings()
    code = (
        "from types import SimpleNamespace\n"
        "from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY as R\n"
        "from genbench.core.spec import DataSpec\n"
        "from genbench.evaluation import extractors as ex\n"
        "assert not set(ex.GENBENCH_EXTRACTORS) & set(R), 'registered on import'\n"
        "spec = DataSpec(name='p', kind='points', shape=(2,), num_levels=None)\n"
        "ex.resolve_extractor(SimpleNamespace(spec=spec, feature_extractor=None), "
        f"{s.cache_dir!r}, inception_download={s.inception_download})\n"
        "assert set(ex.GENBENCH_EXTRACTORS) <= set(R)\n"
        "ex.register_extractors()  # again: a no-op\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_points_use_raw_coordinates_and_have_no_inception_score():
    dm = moons()
    coords = extractor(dm)
    assert coords.kind == "coords" and not coords.has_logits
    gen, real = dm.split("train")[0], dm.split("test")[0]
    kw = fidelity_kwargs(eval_settings(kid_subsets=4, kid_subset_size=200, bootstrap_resamples=0))
    m = compute_fidelity(gen, real, coords, seed=SEED, **kw)
    a, b = gen.double().numpy(), real.double().numpy()
    assert m["fid"] == pytest.approx(frechet(a, b), rel=1e-4)
    assert m["kid_mean"] == pytest.approx(kid(a, b, 4, 200, SEED)[0], rel=1e-4)
    assert m["is_mean"] is None and m["is_std"] is None
    pr = precision_recall(a, b, kw["prc_neighborhood"])
    assert (m["precision"], m["recall"]) == pytest.approx(pr, abs=1e-6)


def test_reference_statistics_are_cached_and_keyed_by_weights(digits, classifier, tmp_path):
    gen, real = digits.split("train")[0][:200], digits.split("test")[0]
    name = reference_cache_name("digits", "test", real, classifier)
    settings = eval_settings(
        cache_dir=str(tmp_path), kid_subsets=2, kid_subset_size=100, bootstrap_resamples=0
    )
    kw = dict(reference_name=name, seed=SEED, **fidelity_kwargs(settings))
    seen = ex.ClassifierFeatureExtractor.examples_seen
    first = compute_fidelity(gen, real, classifier, **kw)
    assert ex.ClassifierFeatureExtractor.examples_seen - seen == len(gen) + len(real)
    files = sorted((tmp_path / "fidelity").glob(f"{name}-*.pt"))
    assert len(files) == 3  # features (penultimate, logits) and FID statistics
    mtimes = [f.stat().st_mtime_ns for f in files]

    seen = ex.ClassifierFeatureExtractor.examples_seen
    second = compute_fidelity(gen, real, classifier, **kw)
    assert ex.ClassifierFeatureExtractor.examples_seen - seen == len(gen)  # reference from cache
    assert [f.stat().st_mtime_ns for f in files] == mtimes and second == first

    ckpt = clf.load_classifier(classifier.weights_path)  # "retrained": other weights, other key
    ckpt["state_dict"]["head.bias"] = ckpt["state_dict"]["head.bias"] + 0.5
    clf.save_classifier(ckpt, tmp_path / "other.pt")
    other = ex.Extractor(
        "classifier", ex.CLASSIFIER_NAME, str(tmp_path / "other.pt"), clf.classifier_hash(ckpt), 17
    )
    other_name = reference_cache_name("digits", "test", real, other)
    assert other_name != name
    seen = ex.ClassifierFeatureExtractor.examples_seen
    compute_fidelity(gen, real, other, **{**kw, "reference_name": other_name})
    assert ex.ClassifierFeatureExtractor.examples_seen - seen == len(gen) + len(real)
    assert len(list((tmp_path / "fidelity").glob(f"{other_name}-*.pt"))) == 3


def test_shipped_digits_classifier_matches_its_record(digits):
    path = clf.ASSETS / "digits_classifier.pt"
    ckpt = clf.load_classifier(path)
    assert path.stat().st_size < 400_000
    assert ckpt["meta"]["train_data_hash"] == tensor_hash(digits.split("train")[0])
    acc = clf.classifier_accuracy(ckpt, *digits.split("test"))
    assert acc >= 0.97 and acc == pytest.approx(ckpt["meta"]["test_accuracy"])


@pytest.mark.slow
def test_digits_classifier_retrains_to_the_shipped_one(digits):
    """Retrained from the same data and seed, the classifier is the shipped one: to the bit on
    the machine that trained it, and on another CPU (this project's Intel Xeon
    gives other bits: float results differ between CPUs' vector code) with its test accuracy
    within a point and the same predicted class for at least 98% of the test images."""
    ckpt = clf.train_classifier(*digits.split("train"), 17, seed=0)
    shipped = clf.load_classifier(clf.ASSETS / "digits_classifier.pt")
    if clf.classifier_hash(ckpt) == clf.classifier_hash(shipped):
        return
    x, y = digits.split("test")
    assert abs(clf.classifier_accuracy(ckpt, x, y) - clf.classifier_accuracy(shipped, x, y)) < 0.01
    (new_net, k), (old_net, _) = clf.build_classifier(ckpt), clf.build_classifier(shipped)
    with torch.no_grad():
        same = new_net(clf.to_unit(x, k))[1].argmax(1) == old_net(clf.to_unit(x, k))[1].argmax(1)
    assert same.float().mean() >= 0.98


class SmallDigits(DigitsDataModule):
    """Digits under another name with a 200-example train split: no shipped classifier."""

    @property
    def spec(self):
        return DataSpec(name="digits_small", kind="image", shape=(1, 8, 8), num_levels=17)

    def load_splits(self):
        s = super().load_splits()
        return {**s, "train": (s["train"][0][:200], s["train"][1][:200])}


def test_classifier_trained_on_first_use_and_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(clf, "train_classifier", _quick(clf.train_classifier))
    dm = SmallDigits(**loader_settings())
    path = clf.classifier_weights(dm, tmp_path)
    assert path.parent == tmp_path / "classifiers" and path.is_file()
    assert clf.load_classifier(path)["meta"]["epochs"] == 3  # trained by the patched function
    mtime = path.stat().st_mtime_ns
    assert clf.classifier_weights(dm, tmp_path) == path and path.stat().st_mtime_ns == mtime
    resolved = extractor(dm, eval_settings(cache_dir=str(tmp_path)))
    assert resolved.weights_path == str(path) and resolved.has_logits


def _quick(train):
    def few_epochs(*args, **kwargs):
        return train(*args, **{**kwargs, "epochs": 3})

    return few_epochs


def test_a_first_use_inside_a_validation_trains_the_classifier_and_leaves_the_rng(tmp_path):
    """The GAN's validation FID can be the first use of a data set's classifier: it is trained
    there, in inference mode (a MNIST subset's GAN failed with 'does not require grad'), and the
    run's global RNG is what it was (the training that follows draws the same noise)."""
    x, y = SmallDigits(**loader_settings()).split("train")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with torch.inference_mode():
        ckpt = clf.train_classifier(x, y, 17, epochs=1)
    assert torch.equal(torch.rand(3), expected)
    outside = clf.train_classifier(x, y, 17, epochs=1)
    assert clf.classifier_hash(ckpt) == clf.classifier_hash(outside)


class RandomRGB(TensorDataModule):
    """Five random 3x16x16 8-bit images per split: a stand-in for natural images."""

    @property
    def spec(self):
        return DataSpec(name="random_rgb", kind="image", shape=(3, 16, 16), num_levels=256)

    def load_splits(self):
        g = torch.Generator().manual_seed(0)
        make = lambda: (torch.randint(0, 256, (5, 3, 16, 16), generator=g), torch.zeros(5).long())  # noqa: E731
        return {"train": make(), "val": make(), "test": make()}


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """An InceptionV3 state dict with PyTorch's default random init, written to a file."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save({}, path)
    load = torch.nn.Module.load_state_dict
    torch.nn.Module.load_state_dict = lambda self, *a, **k: None  # skip loading the empty file
    try:
        torch.manual_seed(0)
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], str(path))
    finally:
        torch.nn.Module.load_state_dict = load
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow  # ~15 s CPU: 10 images through InceptionV3 at 299x299
def test_inception_path_end_to_end(random_inception_weights, tmp_path):
    dm = RandomRGB(**loader_settings())
    assert dm.feature_extractor == "inception"
    settings = eval_settings(
        cache_dir=str(tmp_path),
        inception_weights=str(random_inception_weights),
        fidelity_batch_size=10,
        kid_subsets=2,
        isc_splits=1,
        density_coverage_k=2,
        bootstrap_resamples=20,
        ct_cells=2,
        ct_min_generated=1,
    )
    inception_v3 = extractor(dm, settings)
    assert inception_v3.name == "inception-v3-compat" and inception_v3.weights_hash == file_hash(
        random_inception_weights
    )
    x = inception_v3.prepare(dm.split("test")[0])
    assert x.dtype == torch.uint8 and x.shape == (5, 3, 16, 16)
    m = compute_fidelity(
        dm.split("train")[0],
        dm.split("test")[0],
        inception_v3,
        reference_name=reference_cache_name(
            "random_rgb", "test", dm.split("test")[0], inception_v3
        ),
        seed=SEED,
        **fidelity_kwargs(settings),
    )
    assert all(np.isfinite(m[k]) for k in ("fid", "kid_mean", "is_mean", "precision", "recall"))
    assert all(np.isfinite(m[k]).all() for k in ("fid_ci", "kid_ci", "density", "coverage"))
    # the whole sample evaluation: memorisation in Inception space and in pixels
    m = score_samples(dm.split("train")[0], RealData(dm, settings), seed=0)
    assert m["fidelity_extractor"] == "inception"
    for suffix in ("", "_pixels"):  # the samples are the training images: copies
        assert m[f"nn_copy_fraction{suffix}"] == 1.0 and m[f"authenticity{suffix}"] == 0.0


def test_missing_inception_weights_say_which_file_goes_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        inception.inception_weights(None, download=False)
    msg = str(e.value)
    assert "\n" not in msg and str(inception.inception_hub_path()) in msg
    assert "weights-inception-2015-12-05-6726825d.pth" in msg and "eval.inception_weights" in msg
    with pytest.raises(FileNotFoundError, match="eval.inception_weights"):
        inception.inception_weights(tmp_path / "nope.pth", download=False)


def test_grayscale_levels_map_to_uint8_rgb():
    x = torch.tensor([0, 8, 16]).view(3, 1, 1, 1)
    out = inception.to_inception_input(x, 17)
    assert out.shape == (3, 3, 1, 1) and out[:, 0].flatten().tolist() == [0, 128, 255]


def test_class_coverage_counts_match_direct_classification():
    """Class counts from the logits the features hold equal the classifier run directly."""
    from genbench.evaluation.classifier import build_classifier, load_classifier
    from genbench.evaluation.sample_metrics import class_coverage

    dm = datamodule("digits")
    s = eval_settings()
    resolved = extractor(dm, s)
    test = dm.split("test")[0]
    net, k = build_classifier(load_classifier(resolved.weights_path))
    with torch.no_grad():
        direct = torch.bincount(net(test.float() / (k - 1))[1].argmax(1), minlength=10)
    features = FeatureSet(resolved, batch_size=s.fidelity_batch_size, cache_dir=s.cache_dir)
    logits = features(test)[features.layers["isc"]]
    same = class_coverage(logits, direct)
    assert same["class_counts"] == direct.tolist()
    assert same["classes_covered"] == 10 and same["class_kl"] < 1e-3
    collapsed = class_coverage(logits[:1].repeat(300, 1), direct)
    assert collapsed["classes_covered"] == 1 and sum(collapsed["class_counts"]) == 300
    assert collapsed["class_kl"] > 1.5  # about log(10): one class instead of ten


def test_floor_scores_validation_images_against_the_models_training_set():
    """The floor's memorisation set is real images never trained on (the validation split), as
    many as the models score, against the whole training split, as the models' samples are."""
    from genbench.evaluation.floor import floor_sets

    dm = datamodule("digits")
    sets = floor_sets(dm, num_samples=1000, memorisation_samples=300, seed=0)
    assert torch.equal(sets["generated"], dm.split("val")[0][:300])
    assert len(sets["fidelity"]) == 1000  # all of train, permuted
    assert len(floor_sets(dm, 1000, None, 0)["generated"]) == 350  # capped at the split


def test_the_reference_cache_changes_no_metric(digits, tmp_path):
    """Every sample metric with the model-independent work computed (cold cache), read back
    from the cache (warm, another process's RealData), and against a direct computation of
    memorisation with scikit-learn's own k-means assignment and of density/coverage with their
    radii computed afresh."""
    from sklearn.cluster import KMeans

    from genbench.evaluation.density_coverage import density_coverage
    from genbench.evaluation.memorisation import ct_statistic, train_neighbours
    from genbench.evaluation.reference import pixels

    g = torch.Generator().manual_seed(0)
    train = digits.split("train")[0]
    noisy = (train[:400] + torch.randint(-2, 3, train[:400].shape, generator=g)).clamp(0, 16)
    settings = eval_settings(
        cache_dir=str(tmp_path), ct_cells=4, bootstrap_resamples=20, kid_subsets=10
    )
    cold = score_samples(noisy, RealData(digits, settings), seed=0)
    warm = score_samples(noisy, RealData(digits, settings), seed=0)  # from the file cache
    assert cold == warm
    assert (tmp_path / "fidelity" / "reference").is_dir()

    # direct: C_T in pixel space with sklearn's k-means predict for both sets
    test = digits.split("test")[0]
    gp, tp, rp = (pixels(x, 17) for x in (noisy, test, train))
    km = KMeans(n_clusters=4, random_state=0, n_init="auto").fit(rp.numpy())
    gc, tc = km.predict(gp.numpy()), km.predict(tp.numpy())
    gd = train_neighbours(gp, gc, rp, km.labels_)[2]
    td = train_neighbours(tp, tc, rp, km.labels_)[2]
    direct = ct_statistic(gd, gc, td, tc, 4, 20)
    assert cold["ct_score_pixels"] == pytest.approx(direct, rel=1e-6)
    real = RealData(digits, settings)
    layer = real.features.layers["fid"]
    k = settings.density_coverage_k
    dc = density_coverage(real.features(noisy)[layer], real.test_features[layer], k)
    assert cold["density"] == pytest.approx(dc["density"], rel=1e-6)
    assert cold["coverage"] == pytest.approx(dc["coverage"], rel=1e-6)
