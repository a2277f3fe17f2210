"""The registry of reproductions: a name, the bib key of the paper, a one-line method, a module.

Entries are added by explicit ``register`` calls in ``build``; a bib key that the corpus does
not hold is refused, so no reproduction can claim a paper the review does not have. Modules are
imported only when a run needs them (``reproduce list`` stays fast).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from types import ModuleType

from survey.corpus import load_corpus


class RegistryError(ValueError):
    """A registration that contradicts the corpus or another registration."""


@dataclass(frozen=True)
class Reproduction:
    name: str
    bib_key: str
    method: str
    module: str  # dotted path of a module with PRESETS and run(config, run) -> Outcome

    def load(self) -> ModuleType:
        module = importlib.import_module(self.module)
        missing = [attr for attr in ("PRESETS", "run") if not hasattr(module, attr)]
        if missing:
            raise RegistryError(f"{self.module} lacks {', '.join(missing)}")
        return module


class Registry:
    def __init__(self, corpus_keys: set[str]):
        self.corpus_keys = corpus_keys
        self.entries: dict[str, Reproduction] = {}

    def register(self, name: str, bib_key: str, method: str, module: str) -> Reproduction:
        if bib_key not in self.corpus_keys:
            raise RegistryError(f"{name}: bib key {bib_key!r} is not in the corpus; add the paper first")
        if name in self.entries:
            raise RegistryError(f"{name} is registered twice")
        self.entries[name] = Reproduction(name, bib_key, method, module)
        return self.entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __getitem__(self, name: str) -> Reproduction:
        return self.entries[name]


def build(corpus_keys: set[str]) -> Registry:
    """Every reproduction that has a module, registered one by one."""
    registry = Registry(corpus_keys)
    registry.register("paper1", "Yi2019GANReview",
                      "bibliometric: task distribution of the knowledge base's GAN papers beside a proxy of Fig. 4",
                      "reproductions.paper1_gan_review")
    registry.register("paper4", "Kazeminia2020GANs",
                      "bibliometric: task x modality x code-availability table of the knowledge base's GAN papers",
                      "reproductions.paper4_gans_mia")
    registry.register("paper10", "Wu2022GCML",
                      "GCML: denoising autoencoder with clustering, isometric, ranking and alignment losses",
                      "reproductions.paper10_gcml")
    return registry


@functools.cache
def default_registry() -> Registry:
    return build(set(load_corpus().table["key"]))


@functools.cache
def planned() -> dict[str, tuple[str, str]]:
    """``{name: (bib key, review topic)}`` for each reproduction the corpus names, in review order."""
    table = load_corpus().table
    named = table[table["reproduction"].notna()].sort_values("review_number")
    return {r.reproduction: (r.key, r.review_topic or r.title) for r in named.itertuples()}
