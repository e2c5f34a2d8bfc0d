from genbench.families.base import NLL_KINDS, GenerativeModule

__all__ = ["NLL_KINDS", "GenerativeModule"]
