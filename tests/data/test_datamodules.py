"""Each data set loads from files in its native format, written here; no network."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genbench.data.toy2d import TOY_DENSITIES
from tests.conftest import datamodule


def test_digits_split_and_levels():
    from sklearn.datasets import load_digits

    dm = datamodule("digits", batch_size=64)
    sizes = {s: len(dm.split(s)[0]) for s in ("train", "val", "test")}
    assert sizes == {"train": 1000, "val": 350, "test": 447}
    x, y = dm.split("test")
    raw = load_digits()
    assert torch.equal(x.view(-1, 64), torch.from_numpy(raw.data[-447:].astype(np.int64)))
    assert torch.equal(y, torch.from_numpy(raw.target[-447:]))
    assert x.dtype == torch.long and x.min() == 0 and x.max() == 16
    assert dm.spec.num_levels == 17 and dm.spec.shape == (1, 8, 8) and dm.spec.num_dims == 64
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (64, 1, 8, 8)


@pytest.mark.parametrize("name", sorted(TOY_DENSITIES))
def test_toy_splits_fixed_seed_and_distinct(name):
    a, b = (datamodule("moons", name=name, num_train=500) for _ in range(2))
    assert torch.equal(a.split("train")[0], b.split("train")[0])
    assert not torch.equal(a.split("val")[0][:100], a.split("test")[0][:100])
    x = a.split("train")[0]
    assert x.shape == (500, 2) and x.dtype == torch.float32 and x.abs().max() < 5


def test_unknown_toy_names_choices():
    with pytest.raises(ValueError, match=r"unknown toy density 'ring'.*moons"):
        datamodule("moons", name="ring")


def _write_idx(path, array: np.ndarray) -> None:
    magic = {1: 0x0801, 3: 0x0803}[array.ndim]
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
        f.write(array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_reads_idx_files(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_x, test_x = rng.integers(0, 256, (30, 28, 28)), rng.integers(0, 256, (7, 28, 28))
    _write_idx(raw / "train-images-idx3-ubyte", train_x)
    _write_idx(raw / "train-labels-idx1-ubyte", rng.integers(0, 10, 30))
    _write_idx(raw / "t10k-images-idx3-ubyte", test_x)
    _write_idx(raw / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 7))
    dm = datamodule(name, root=str(tmp_path), download=False, num_val=5)
    assert [len(dm.split(s)[0]) for s in ("train", "val", "test")] == [25, 5, 7]
    assert torch.equal(dm.split("test")[0][:, 0], torch.from_numpy(test_x))
    assert torch.equal(dm.split("val")[0][:, 0], torch.from_numpy(train_x[-5:]))
    assert dm.spec.shape == (1, 28, 28) and dm.spec.num_levels == 256


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_files_error_names_path_and_flag(tmp_path, name):
    dm = datamodule(name, root=str(tmp_path / "nowhere"), download=False, num_val=5)
    with pytest.raises(FileNotFoundError) as e:
        dm.setup()
    msg = str(e.value)
    assert str(tmp_path / "nowhere") in msg and "download" in msg and "\n" not in msg


def test_cifar10_reads_python_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = rng.integers(0, 256, (4, 3072)).astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": batches[name], "labels": list(range(4))}, f)
    dm = datamodule("cifar10", root=str(tmp_path), download=False, num_val=4)
    x, y = dm.split("test")
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.long
    assert torch.equal(x.reshape(4, -1), torch.from_numpy(batches["test_batch"]).long())
    assert len(dm.split("train")[0]) == 16 and len(dm.split("val")[0]) == 4
    assert torch.equal(
        dm.split("val")[0].reshape(4, -1), torch.from_numpy(batches["data_batch_5"]).long()
    )


def test_image_folder_resizes_and_splits(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            arr = rng.integers(0, 256, (20, 24, 3)).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    dm = datamodule(
        "image_folder",
        root=str(tmp_path),
        image_size=16,
        channels=3,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    sizes = [len(dm.split(s)[0]) for s in ("train", "val", "test")]
    assert sizes == [12, 4, 4]
    x = dm.split("train")[0]
    assert x.shape == (12, 3, 16, 16) and x.dtype == torch.long and x.max() < 256
    gray = datamodule("image_folder", root=str(tmp_path), image_size=8, channels=1)
    assert gray.split("test")[0].shape[1:] == (1, 8, 8)


def test_image_folder_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datamodule("image_folder", root=str(tmp_path / "none")).setup()


def _mnist_files(root, n_train=30, n_test=7):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    _write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28)))
    _write_idx(raw / "train-labels-idx1-ubyte", rng.integers(0, 10, n_train))
    _write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)))
    _write_idx(raw / "t10k-labels-idx1-ubyte", rng.integers(0, 10, n_test))
    return raw


def _spoil(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) - 100])
    elif how == "magic":
        path.write_bytes(b"\x00\x00\x09\x03" + data[4:])
    elif how == "header":
        path.write_bytes(data[:10])


@pytest.mark.parametrize(
    "file,how,expect",
    [
        ("train-images-idx3-ubyte", "truncated", "truncated"),
        ("t10k-images-idx3-ubyte", "magic", "magic number 0x00000903, expected 0x00000803"),
        ("train-labels-idx1-ubyte", "header", "truncated"),
        ("t10k-labels-idx1-ubyte", "missing", "missing"),
    ],
)
def test_bad_idx_files_give_one_line_errors_naming_the_file(tmp_path, file, how, expect):
    raw = _mnist_files(tmp_path)
    if how == "missing":
        (raw / file).unlink()
    else:
        _spoil(raw / file, how)
    with pytest.raises((ValueError, FileNotFoundError)) as e:
        datamodule("mnist", root=str(tmp_path), download=False, num_val=5).setup()
    msg = str(e.value)
    assert file in msg and expect in msg and "\n" not in msg


def test_images_and_labels_of_different_counts_are_refused(tmp_path):
    raw = _mnist_files(tmp_path)
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(6, dtype=np.int64))
    with pytest.raises(ValueError, match=r"7 images.*t10k-labels-idx1-ubyte' 6 labels"):
        datamodule("mnist", root=str(tmp_path), download=False, num_val=5).setup()


SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_mnist = pytest.mark.skipif(
    not (SHARED / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file(),
    reason=f"the real MNIST files are not at {SHARED}/MNIST/raw (a clone without ../shared)",
)


@needs_mnist
def test_real_mnist_files_through_the_data_module():
    """The shared copy of MNIST: counts, first labels and class counts as its README states."""
    dm = datamodule("mnist", root=str(SHARED), download=False)  # the benchmark's 5000 val
    (x, y), (xv, yv), (xt, yt) = (dm.split(s) for s in ("train", "val", "test"))
    assert (len(x), len(xv), len(xt)) == (55000, 5000, 10000)
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    counts = torch.bincount(torch.cat([y, yv]), minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert x.dtype == torch.long and x.shape[1:] == (1, 28, 28) and x.max() == 255
    sub = datamodule("mnist", root=str(SHARED), download=False, num_train=512, num_test=256)
    assert [len(sub.split(s)[0]) for s in ("train", "val", "test")] == [512, 5000, 256]
    assert torch.equal(sub.split("train")[0], x[:512])


@pytest.mark.parametrize("dataset", ["digits", "moons"])
def test_batches_are_those_of_stacking_the_examples_one_by_one(dataset):
    """BatchedTensors indexes a batch at once; what it yields (train, with a mid-pass resume,
    and evaluation with its last short batch) equals the stock TensorDataset + default_collate
    loader over the same sampler: same values, dtypes and order."""
    from torch.utils.data import DataLoader, TensorDataset

    from genbench.data.datamodules import EpochSeededSampler

    dm = datamodule(dataset, batch_size=48, eval_batch_size=100)
    dm.load_state_dict({"train_passes": 3, "skip_batches": 2})
    new = list(dm.train_dataloader())
    x, y = dm.split("train")
    sampler = EpochSeededSampler(len(x), dm.shuffle_seed, passes=3, skip=2 * 48)
    old = list(DataLoader(TensorDataset(x, y), batch_size=48, sampler=sampler, drop_last=True))
    assert len(new) == len(old) == len(x) // 48 - 2
    x_test, y_test = dm.split("test")
    stock = DataLoader(TensorDataset(x_test, y_test), batch_size=100)
    new += list(dm.test_dataloader())
    old += list(stock)
    assert len(new[-1][0]) == len(x_test) % 100 or len(x_test) % 100 == 0
    for a, b in zip(new, old, strict=True):
        assert isinstance(a, list) and len(a) == 2
        for u, v in zip(a, b, strict=True):
            assert u.dtype == v.dtype and torch.equal(u, v)
