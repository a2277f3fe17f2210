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
    module: str  # dotted path of a module with PRESETS and main(config, run: Run) -> Outcome

    def load(self) -> ModuleType:
        module = importlib.import_module(self.module)
        missing = [what for what, found in (("PRESETS", hasattr(module, "PRESETS")),
                                            ("main(config, run)", hasattr(module, "main")))
                   if not found]
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
    registry.register("paper2", "Chuquicusma2018Fool",
                      "DCGAN on lung nodule patches; automatic observer panel and a visual Turing test for readers",
                      "reproductions.paper2_dcgan_nodules")
    registry.register("paper3", "FridAdar2018Synthetic",
                      "liver lesion CNN under 3-fold CV: classic augmentation, then one DCGAN per class",
                      "reproductions.paper3_gan_augmentation")
    registry.register("paper4", "Kazeminia2020GANs",
                      "bibliometric: task x modality x code-availability table of the knowledge base's GAN papers",
                      "reproductions.paper4_gans_mia")
    registry.register("paper5", "UsmanAkbar2024BrainTumor",
                      "GAN vs DDPM image+mask generators for brain tumour MRI, judged by U-Net Dice, FID and memorisation",
                      "reproductions.paper5_gan_vs_diffusion")
    registry.register("paper6", "Hung2023MedcDiff",
                      "conditional DDPM for denoising, super-resolution and inpainting; LoRA adaptation of its U-Net",
                      "reproductions.paper6_conditional_diffusion")
    registry.register("paper7", "Lin2025MTMed",
                      "report generation benchmark: three encoder families, a LoRA-tuned decoder, in- and cross-modality",
                      "reproductions.paper7_peft_report_benchmark")
    registry.register("paper8", "Sortino2023Transformer",
                      "scene graph -> layout transformer -> VQ-VAE tokens from an autoregressive transformer",
                      "reproductions.paper8_scene_graph_transformer")
    registry.register("paper9", "Izhar2025Engaging",
                      "two-stage report generation: findings, then SmolLM2 with LoRA: ORPO vs step-matched SFT",
                      "reproductions.paper9_lora_orpo_reports")
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
