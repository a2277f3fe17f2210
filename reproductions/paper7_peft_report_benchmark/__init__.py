"""Paper 7: Lin et al. 2025, a benchmark of PEFT / LoRA fine-tuned models for medical report
generation across modalities, bib key Lin2025MTMed.

What is reproduced: the benchmark's design at toy scale. Image encoders of three families,
  - natural-domain pretrained: the standard FID Inception-v3 (ImageNet weights, frozen, 2048-d),
  - modality-specific: a small CNN trained here on one modality's patch labels,
  - multi-modality "foundation": the same CNN trained here on all four modalities' labels,
each feeding a LoRA-tuned language decoder (SmolLM2-135M-Instruct; image features become a few
prefix embeddings through a projection trained with the LoRA), on four modalities (CT, X-ray, MR,
pathology) in two splits: in-modality (decoder trained and tested on one modality) and
cross-modality (decoder trained on three, tested on the held-out fourth). Scores: BERTScore, ROUGE-L,
BLEU-1, CIDEr and METEOR, in the layout of the paper's table (the review's Figure 10), beside the
paper's X-ray numbers for R2GenGPT and XrayGPT (the only ones reported-results.md gives); the
paper's two claims are decided by a rule on this run's scores (``report.claims``).

Parts: ``model.py`` (patches, encoders, decoder, training, generation, scores; ``patches.py`` cuts
the four modalities' patches for it) and ``report.py`` (the paper's numbers, rows, claims, figures).

How it differs from the paper, and why:
- No real report exists offline for any of the images used (the IU X-ray reports come without their
  images), so every report here is written by a template from the patch's labels (synthetic). The
  text metrics then measure how well each system learns label-conditioned templates (which organ,
  zone or tissue, and a tercile of a measured intensity), not radiology language; they are far above
  the paper's, and not comparable with them.
- The images are real but few: patches cut from one chest CT (organ label map), one chest
  radiograph (hand-drawn zones), the MNI152 brain template (tissue maps) and one
  immunohistochemistry image (stain deconvolution). Patches of one image are not independent
  patients, and test patches may overlap training patches of the same image.
- MR (the MNI152 brain template) stands in for the paper's ultrasound: no ultrasound image is
  available offline.
- The encoders stand in for the paper's families (its models, e.g. R2GenGPT, XrayGPT, USFM, PLIP,
  BiomedCLIP, cannot be had offline): ImageNet Inception-v3 (the FID weights) for natural-domain
  models, small CNNs trained here on the patch labels for modality-specific and foundation models.
  Encoders stay frozen; only LoRA and a prefix projection train. The foundation CNN is trained on the
  training patches of all four modalities, the held-out one included (as real foundation models have
  seen every modality); the decoder never sees the held-out modality's reports. In the
  cross-modality split the modality-specific encoder is that of the next training modality in the
  order CT, X-ray, MR, pathology (the encoder of the held-out modality would have seen its labels).
- The decoder is SmolLM2-135M-Instruct (its 4-bit release dequantised), not the paper's LLMs, with
  LoRA on q/k/v/o, a few image prefix tokens and greedy decoding (the step counts, rank and lengths
  are in config.json). BERTScore uses MiniLM-L6 (roberta-large cannot be downloaded), so BS is not
  comparable with the paper's BS.
- Every experiment trains the same number of steps with the same LoRA initialisation, and the three
  families of one split and test modality share the projection's initialisation and the batch order.
  One seed and no confidence intervals (the paper gives 95% intervals), so the claims are decided
  only with at least ``report.MIN_TEST_PATCHES`` (30) test patches per modality; with fewer they are
  not testable here, and the mean ranks are still shown.
- The review's own summary of paper 7 says medical foundation models are best particularly across
  modalities; reported-results.md says natural-domain models are: the cross-modality claim follows
  reported-results.md, and its evidence names both.
- The paper's numbers beside ours are only R2GenGPT's and XrayGPT's X-ray rows (reported-results.md);
  their split is not stated there, and they are set beside our in-modality modality-specific X-ray row.
- Profiles: smoke (about a minute on 2 CPU cores, one training step: shows the pipeline works);
  cpu (a few hundred patches, 12 steps per experiment, minutes on a CPU); full (sized for one
  GPU in under ten minutes with bf16 autocast; not timed on a GPU here).
"""

from __future__ import annotations

from dataclasses import dataclass

from reproductions.common.docstring import differences
from reproductions.outcome import Outcome
from reproductions.run import Run

from . import model, report
from .model import FAMILIES, SPLITS
from .patches import MODALITIES

__all__ = ["FAMILIES", "MODALITIES", "PRESETS", "SPLITS", "Config", "main"]


@dataclass(frozen=True)
class Config:
    modalities: tuple[str, ...] = MODALITIES
    splits: tuple[str, ...] = SPLITS
    patches_per_class: int = 60  # drawn per class of each modality (CT 7, X-ray 7, MR 3, pathology 4 classes)
    test_per_modality: int = 60  # of those, held out for testing (classes in turn)
    image_size: int = 64  # px, every patch; the Inception resizes to 299 itself
    cnn_width: int = 32
    cnn_features: int = 128
    cnn_epochs: int = 40
    cnn_lr: float = 2e-3
    prefix_tokens: int = 4  # image embeddings in front of the prompt
    lora_rank: int = 16
    lora_alpha: int = 32
    steps: int = 250  # decoder training steps per experiment (24 experiments with every modality and split)
    batch_size: int = 16
    lr: float = 2e-3
    max_new_tokens: int = 40  # the template reports are 16-28 tokens
    examples: int = 2  # generated reports kept per experiment in metrics.json

    def __post_init__(self):
        unknown = set(self.modalities) - set(MODALITIES)
        if not self.modalities or unknown or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities: choose distinct ones from {', '.join(MODALITIES)} "
                             f"(got {', '.join(self.modalities) or 'none'})")
        if not self.splits or set(self.splits) - set(SPLITS):
            raise ValueError(f"splits: choose from {', '.join(SPLITS)} (got {', '.join(self.splits) or 'none'})")
        if "cross-modality" in self.splits and len(self.modalities) < 2:
            raise ValueError("modalities: the cross-modality split needs at least two")
        for name in ("patches_per_class", "test_per_modality", "image_size", "cnn_width", "cnn_features",
                     "cnn_epochs", "prefix_tokens", "lora_rank", "lora_alpha", "steps", "batch_size",
                     "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.image_size < 16:
            raise ValueError("image_size must be at least 16 (four stride-2 convolutions)")
        if self.test_per_modality >= 3 * self.patches_per_class:  # MR has the fewest classes: 3
            raise ValueError("test_per_modality must leave training patches: keep it below 3 x patches_per_class")
        if self.lr <= 0 or self.cnn_lr <= 0:
            raise ValueError("lr and cnn_lr must be positive")
        if self.examples < 0:
            raise ValueError("examples must not be negative")


PRESETS = {
    # a handful of patches, one decoder step per experiment, short generations: about a minute on 2 cores.
    "smoke": Config(patches_per_class=2, test_per_modality=2, cnn_epochs=3, steps=1, batch_size=4,
                    max_new_tokens=12, examples=1),
    # a few patches per class and 12 steps per experiment (enough to learn the templates' structure).
    "cpu": Config(patches_per_class=6, test_per_modality=8, cnn_epochs=30, steps=12, batch_size=8,
                  max_new_tokens=32),
    # sized for one GPU in under ten minutes (not timed on a GPU here).
    "full": Config(),
}


def main(config: Config, run: Run) -> Outcome:
    """Cut the patches, encode them with the three families, train and score a decoder per experiment,
    then report them beside the paper's numbers."""
    train, test = model.load_patches(config, run)
    features, accuracy = model.encode(config, run, train, test)
    scores, experiments, generated = model.benchmark(config, run, train, test, features)
    test_sizes = {m: len(test[m]) for m in config.modalities}
    n_classes = {m: len(train[m].classes) for m in config.modalities}
    metrics = {**scores, "encoder_accuracy": accuracy, "test_sizes": test_sizes, "experiments": experiments,
               "ranks": {split: report.mean_ranks(scores[split]) for split in config.splits}}
    return Outcome(metrics, report.rows(scores), report.claims(scores, test_sizes, accuracy, n_classes),
                   report.data_notes(train, test), report.figures(scores, test, generated, config.modalities, run),
                   differences(__doc__))
