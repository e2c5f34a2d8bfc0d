"""LightningDataModules: digits, 2-D toy densities, MNIST, Fashion-MNIST, CIFAR-10, image folder.

Every module keeps its three splits as in-memory tensors: images as long (N, C, H, W) in
[0, K), points as float (N, D); labels as long (N,) (-1 where the data set has none).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from genbench.core.spec import DataSpec
from genbench.data.idx import read_images_and_labels
from genbench.data.toy2d import sample_toy

Split = tuple[torch.Tensor, torch.Tensor]


class BatchedTensors(TensorDataset):
    """A TensorDataset whose batches are one indexing per tensor: the DataLoader hands
    `__getitems__` a batch's indices and `collate` passes the result on as default_collate
    would have built it ([x, y]). Same examples, same order, same values and dtypes as stacking
    the examples one by one, without a Python call and a copy per example."""

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return [t[index] for t in self.tensors]

    @staticmethod
    def collate(batch: list[torch.Tensor]) -> list[torch.Tensor]:
        return batch


class EpochSeededSampler(Sampler[int]):
    """A random permutation per pass drawn from (seed, pass number) alone, not the global RNG.

    The pass counter and the position inside the pass travel in checkpoints
    (TensorDataModule.state_dict), so a run resumed from an epoch-end or a mid-epoch checkpoint
    sees exactly the batches an uninterrupted run would: `skip` drops the first examples of
    the next pass only (those of the batches trained before the checkpoint). (Lightning's
    set_epoch numbering jumps by one when resuming from an epoch-end checkpoint, so it is not
    used.)
    """

    def __init__(self, num_examples: int, seed: int, passes: int = 0, skip: int = 0):
        self.num_examples, self.seed, self.passes, self.skip = num_examples, seed, passes, skip

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100003 + self.passes)
        self.passes += 1
        order = torch.randperm(self.num_examples, generator=g).tolist()
        skip, self.skip = self.skip, 0
        return iter(order[skip:])

    def __len__(self) -> int:
        return self.num_examples


# The validation subset (val_examples) is drawn with this seed: every run, family and seed
# selects its checkpoint on the same images.
VAL_SUBSET_SEED = 0


def random_subset(num_examples: int, n: int | None, seed: int) -> torch.Tensor | None:
    """Sorted indices (n,) of a random subset of range(num_examples) drawn from `seed`; None when
    n is None or covers them all. (A split's first n examples are not random: MNIST's test file
    is ordered by writer population.)"""
    if n is None or n >= num_examples:
        return None
    if n < 1:
        raise ValueError(f"subset of {n} examples; valid: >= 1, or null for all {num_examples}")
    perm = torch.randperm(num_examples, generator=torch.Generator().manual_seed(seed))
    return perm[:n].sort().values


class TensorDataModule(L.LightningDataModule):
    """Base: subclasses give `spec` and `load_splits()`; batching and loaders live here.

    `feature_extractor` names the fidelity metrics' features (genbench.evaluation.extractors):
    "inception", "classifier" or "coords"; None takes the class's default. `val_examples`: the
    validation loader (model selection) serves a fixed random subset of that many validation
    examples (None: all of them).
    """

    default_feature_extractor = "inception"

    def __init__(
        self,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int,
        shuffle_seed: int,
        feature_extractor: str | None = None,
        val_examples: int | None = None,
    ):
        super().__init__()
        self.shuffle_seed = shuffle_seed
        self.val_examples = val_examples
        self.feature_extractor = feature_extractor or self.default_feature_extractor
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.splits: dict[str, Split] = {}
        self._sampler: EpochSeededSampler | None = None
        self._passes = 0  # training passes begun before this one (restored from a checkpoint)
        self._skip_batches = 0  # batches of that pass already trained (mid-epoch checkpoint)

    @property
    def spec(self) -> DataSpec:
        raise NotImplementedError

    def load_splits(self) -> dict[str, Split]:
        """Return {"train": (x, y), "val": (x, y), "test": (x, y)}."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self.load_splits()
            for name, (x, _) in self.splits.items():
                self._check(name, x)

    def _check(self, split: str, x: torch.Tensor) -> None:
        spec = self.spec
        if tuple(x.shape[1:]) != tuple(spec.shape):
            raise ValueError(
                f"{spec.name} {split} split has shape {tuple(x.shape[1:])}, spec says {spec.shape}"
            )
        if spec.is_image and (x.min() < 0 or x.max() >= spec.num_levels):
            raise ValueError(f"{spec.name} {split} split has values outside [0, {spec.num_levels})")

    def split(self, name: str) -> Split:
        """The (x, y) tensors of split `name` ('train', 'val' or 'test')."""
        self.setup()
        if name not in self.splits:
            raise ValueError(f"unknown split {name!r}; valid: {sorted(self.splits)}")
        return self.splits[name]

    def _train_sampler(self, n: int) -> EpochSeededSampler:
        skip = self._skip_batches * self.batch_size
        self._sampler = EpochSeededSampler(n, self.shuffle_seed, self._passes, skip)
        self._skip_batches = 0
        return self._sampler

    def _loader(self, name: str, train: bool, indices: torch.Tensor | None = None) -> DataLoader:
        x, y = self.split(name)
        if indices is not None:
            x, y = x[indices], y[indices]
        return DataLoader(
            BatchedTensors(x, y),
            batch_size=self.batch_size if train else self.eval_batch_size,
            collate_fn=BatchedTensors.collate,
            sampler=self._train_sampler(len(x)) if train else None,
            drop_last=train and len(x) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # Evaluation loaders draw their workers' base seed from a generator of their own, not
            # the global one: validating leaves the training stream's noise as it was.
            generator=None if train else torch.Generator().manual_seed(0),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def state_dict(self) -> dict:
        """{"train_passes", "skip_batches"}: where the training stream stands. Mid-epoch (a
        step checkpoint), the pass under way is to be redrawn and its first `skip_batches`
        batches, already trained, skipped; at an epoch end the next pass starts afresh."""
        if self._sampler is None:
            return {"train_passes": self._passes, "skip_batches": self._skip_batches}
        done = 0
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            # Batches of this epoch whose optimiser step is done (a step checkpoint is written
            # in on_train_batch_end, after `processed` and before `completed` is counted).
            done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        per_pass = len(self._sampler) // self.batch_size  # drop_last batches
        if 0 < done < per_pass:
            return {"train_passes": self._sampler.passes - 1, "skip_batches": done}
        return {"train_passes": self._sampler.passes, "skip_batches": 0}

    def load_state_dict(self, state: dict) -> None:
        self._passes = int(state.get("train_passes", 0))
        self._skip_batches = int(state.get("skip_batches", 0))
        if self._sampler is not None:
            self._sampler.passes = self._passes
            self._sampler.skip = self._skip_batches * self.batch_size

    def val_dataloader(self) -> DataLoader:
        n = len(self.split("val")[0])
        return self._loader("val", False, random_subset(n, self.val_examples, VAL_SUBSET_SEED))

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def eval_loader(self, split: str, indices: torch.Tensor | None = None) -> DataLoader:
        """An evaluation loader (eval_batch_size, file order) over `indices` of `split` (all of
        it when None)."""
        return self._loader(split, False, indices)


class DigitsDataModule(TensorDataModule):
    """scikit-learn 8x8 digits, 17 levels; train/val/test = first 1000/next 350/last 447."""

    default_feature_extractor = "classifier"

    @property
    def spec(self) -> DataSpec:
        return DataSpec(name="digits", kind="image", shape=(1, 8, 8), num_levels=17)

    def load_splits(self) -> dict[str, Split]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.from_numpy(digits.data.astype(np.int64)).view(-1, 1, 8, 8)
        y = torch.from_numpy(digits.target.astype(np.int64))
        return {
            "train": (x[:1000], y[:1000]),
            "val": (x[1000:1350], y[1000:1350]),
            "test": (x[1350:], y[1350:]),
        }


class Toy2DDataModule(TensorDataModule):
    """A 2-D toy density; each split drawn with its own fixed seed (seed, seed+1, seed+2)."""

    default_feature_extractor = "coords"

    def __init__(
        self,
        name: str,
        num_train: int,
        num_val: int,
        num_test: int,
        seed: int,
        **kwargs,
    ):
        super().__init__(**kwargs)
        sample_toy(name, 1, 0)  # fail fast on an unknown name
        self.name, self.seed = name, seed
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}

    @property
    def spec(self) -> DataSpec:
        return DataSpec(name=self.name, kind="points", shape=(2,), num_levels=None)

    def load_splits(self) -> dict[str, Split]:
        out = {}
        for i, (split, n) in enumerate(self.sizes.items()):
            x = torch.from_numpy(sample_toy(self.name, n, self.seed + i))
            out[split] = (x, torch.full((n,), -1, dtype=torch.long))
        return out


def _missing(name: str, root: str | os.PathLike, detail: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{name} not found under root={str(root)!r} ({detail}) and dataset.download=false; "
        f"put the files there or set dataset.download=true"
    )


def _subsets(splits: dict[str, Split], num_train: int | None, num_test: int | None):
    """The first num_train training / num_test test examples (file order), where set."""
    for split, n in (("train", num_train), ("test", num_test)):
        if n is not None:
            x, y = splits[split]
            if not 0 < n <= len(x):
                raise ValueError(f"dataset.num_{split}={n} must be in [1, {len(x)}]")
            splits[split] = (x[:n], y[:n])
    return splits


def _train_val(x: torch.Tensor, y: torch.Tensor, num_val: int) -> dict[str, Split]:
    """The last `num_val` training examples are the validation split (no shuffling)."""
    if not 0 < num_val < len(x):
        raise ValueError(f"num_val={num_val} must be in (0, {len(x)})")
    return {"train": (x[:-num_val], y[:-num_val]), "val": (x[-num_val:], y[-num_val:])}


IDX = (("images", 3), ("labels", 1))  # the idx files of a split, as torchvision names them


class DownloadedImagesDataModule(TensorDataModule):
    """Images read from files under `root` (fetched there with `download`): validation = the
    last `num_val` training examples; optional subsets of the train and test splits."""

    def __init__(
        self,
        root: str,
        download: bool,
        num_val: int,
        num_train: int | None = None,
        num_test: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.root, self.download, self.num_val = str(root), download, num_val
        # Optional subsets (the first examples of each split, in file order): quick runs, tests.
        self.num_train, self.num_test = num_train, num_test

    def _splits(self, train: Split, test: Split) -> dict[str, Split]:
        """train, val (the end of `train`) and test, each cut to its subset where one is set."""
        splits = _train_val(*train, self.num_val)
        splits["test"] = test
        return _subsets(splits, self.num_train, self.num_test)


class MNISTDataModule(DownloadedImagesDataModule):
    """torchvision MNIST (28x28, 256 levels) read from `root`; val = last `num_val` of train."""

    dataset_name = "mnist"
    folder = "MNIST"
    default_feature_extractor = "classifier"

    @property
    def spec(self) -> DataSpec:
        return DataSpec(name=self.dataset_name, kind="image", shape=(1, 28, 28), num_levels=256)

    def _dataset_class(self):
        from torchvision.datasets import MNIST

        return MNIST

    def prepare_data(self) -> None:
        if self.download:
            for train in (True, False):
                self._dataset_class()(self.root, train=train, download=True)

    def load_splits(self) -> dict[str, Split]:
        if self.download:
            self.prepare_data()
        raw = Path(self.root) / self.folder / "raw"
        files = [raw / f"{p}-{k}-idx{n}-ubyte" for p in ("train", "t10k") for k, n in IDX]
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise _missing(self.dataset_name, self.root, f"missing {missing[0]}")
        train = read_images_and_labels(files[0], files[1])
        return self._splits(train, read_images_and_labels(files[2], files[3]))


class FashionMNISTDataModule(MNISTDataModule):
    """torchvision Fashion-MNIST (28x28, 256 levels), same layout as MNIST."""

    dataset_name = "fashion_mnist"
    folder = "FashionMNIST"

    def _dataset_class(self):
        from torchvision.datasets import FashionMNIST

        return FashionMNIST


class CIFAR10DataModule(DownloadedImagesDataModule):
    """CIFAR-10 (3x32x32, 256 levels) from the python pickles in `root`/cifar-10-batches-py."""

    @property
    def spec(self) -> DataSpec:
        return DataSpec(name="cifar10", kind="image", shape=(3, 32, 32), num_levels=256)

    def prepare_data(self) -> None:
        if self.download:
            from torchvision.datasets import CIFAR10

            CIFAR10(self.root, train=True, download=True)  # verifies the archive's md5

    def load_splits(self) -> dict[str, Split]:
        if self.download:
            self.prepare_data()
        folder = Path(self.root) / "cifar-10-batches-py"
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise _missing("cifar10", self.root, f"missing {folder / missing[0]}")

        def read(files: list[str]) -> Split:
            xs, ys = [], []
            for n in files:
                with open(folder / n, "rb") as f:
                    d = pickle.load(f, encoding="latin1")
                xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(d["labels"], dtype=np.int64))
            return torch.from_numpy(np.concatenate(xs)).long(), torch.from_numpy(np.concatenate(ys))

        return self._splits(read(names[:5]), read(names[5:]))


class ImageFolderDataModule(TensorDataModule):
    """An ImageFolder tree (root/class/img.png), resized to `image_size`, split by fixed seed."""

    def __init__(
        self,
        root: str,
        image_size: int,
        channels: int,
        val_fraction: float,
        test_fraction: float,
        seed: int,
        name: str,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if channels not in (1, 3):
            raise ValueError(f"channels={channels}; valid: 1, 3")
        self.root, self.image_size, self.channels = str(root), image_size, channels
        self.val_fraction, self.test_fraction, self.seed, self.name = (
            val_fraction,
            test_fraction,
            seed,
            name,
        )

    @property
    def spec(self) -> DataSpec:
        shape = (self.channels, self.image_size, self.image_size)
        return DataSpec(name=self.name, kind="image", shape=shape, num_levels=256)

    def load_splits(self) -> dict[str, Split]:
        from torchvision import transforms
        from torchvision.datasets import ImageFolder

        if not Path(self.root).is_dir():
            raise FileNotFoundError(f"image folder root={self.root!r} does not exist")
        tf = transforms.Compose(
            [
                transforms.Grayscale(1)
                if self.channels == 1
                else transforms.Lambda(lambda im: im.convert("RGB")),
                transforms.Resize(self.image_size),
                transforms.CenterCrop(self.image_size),
                transforms.PILToTensor(),
            ]
        )
        ds = ImageFolder(self.root, transform=tf)
        x = torch.stack([ds[i][0] for i in range(len(ds))]).long()
        y = torch.tensor(ds.targets, dtype=torch.long)
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
        n_val = max(1, int(len(x) * self.val_fraction))
        n_test = max(1, int(len(x) * self.test_fraction))
        idx = {
            "val": perm[:n_val],
            "test": perm[n_val : n_val + n_test],
            "train": perm[n_val + n_test :],
        }
        return {k: (x[i], y[i]) for k, i in idx.items()}
