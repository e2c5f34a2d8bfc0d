from genbench.core.spec import DataSpec
from genbench.data.datamodules import (
    CIFAR10DataModule,
    DigitsDataModule,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    TensorDataModule,
    Toy2DDataModule,
)

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
