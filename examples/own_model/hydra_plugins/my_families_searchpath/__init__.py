"""Puts my_families' configs on every Hydra search path: model=diag_gaussian is then an
option of genbench-train and genbench-eval as genbench's own models are, and a sweep's
model=glob(*) includes it (Hydra 1.3 leaves options added by hydra.searchpath=[...] out of
glob: Hydra issue 1942). Hydra finds this module by its place in the
hydra_plugins namespace package."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class MyFamiliesSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="my-families", path="pkg://my_families.conf")
