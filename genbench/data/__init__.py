from genbench.data.datamodules import (
    CIFAR10DataModule,
    DigitsDataModule,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    TensorDataModule,
    Toy2DDataModule,
)
from genbench.data.spec import DataSpec

__all__ = [
    "CIFAR10DataModule",
    "DataSpec",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "TensorDataModule",
    "Toy2DDataModule",
]
