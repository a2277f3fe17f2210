"""Paper 7: Lin et al. 2025, a benchmark of PEFT / LoRA fine-tuned models for medical report
generation across modalities, bib key Lin2025MTMed.

What is reproduced: the benchmark's design at toy scale. Image encoders of three families, all of
them stand-ins chosen or trained here, not the paper's pretrained models:
  - natural-domain pretrained: the standard FID Inception-v3 (ImageNet weights, frozen, 2048-d),
  - modality-specific: a small CNN trained here on one modality's patch labels,
  - multi-modality "foundation": the same CNN trained here on several modalities' labels,
each feeding a LoRA-tuned language decoder (SmolLM2-135M-Instruct; image features become a few
prefix embeddings through a projection trained with the LoRA), on CT, X-ray, MR and pathology
patches, in two splits. In-modality: the decoder learns a modality's reports through encoders that
have seen that modality (its own specific CNN; the foundation CNN of every modality). Cross-modality:
the decoder again learns the test modality's reports (it sees its words), but through encoders that
never saw that modality's images (the next modality's specific CNN; a foundation CNN trained without
it; the Inception, which saw none): images are held out, not words. Scores: BERTScore, ROUGE-L,
BLEU-1, CIDEr and METEOR, in the layout of the paper's table (the review's Figure 10), beside the
paper's X-ray numbers for R2GenGPT and XrayGPT (the only ones reported-results.md gives). Every seed
draws its own patches, split, encoders and decoders; the paper's two claims are decided over the
seeds (``report.claims``): per seed, the best rival's mean rank (1 best, 3 worst, over the split's
modalities x 5 metrics) minus the claimed family's, with a 95% t interval over the seeds, gated on
the decoders' convergence and on both families beating the most common report of each modality.

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
- The encoder families are stand-ins trained here, not the paper's pretrained models (R2GenGPT,
  XrayGPT, USFM, PLIP, BiomedCLIP cannot be had offline): ImageNet Inception-v3 (the FID weights) for
  natural-domain models, small CNNs trained here on the patch labels for modality-specific and
  foundation models. Those labels (organ, zone, tissue, stain class) are the very labels the template
  reports encode, so the in-modality comparison favours the label-supervised CNNs (specific and
  foundation) over the Inception, and more so the more data they train on: it says which encoder
  carries the template's labels, not which pretraining makes the better report writer. Encoders stay
  frozen; only LoRA and a prefix projection train.
- Cross-modality here holds out images, not words: the decoder is always trained on the test
  modality's own (feature, report) pairs, and only the encoders are kept from its images. The paper's
  cross-modality setting is not described in reported-results.md; a decoder that never saw a
  modality's reports cannot write its exam's words, which would make every family fail alike.
- The decoder is SmolLM2-135M-Instruct (its 4-bit release dequantised), not the paper's LLMs, with
  LoRA on q/k/v/o, a few image prefix tokens and greedy decoding (the step counts, rank and lengths are
  in config.json). BERTScore uses MiniLM-L6 (roberta-large cannot be
  downloaded), so BS is not comparable with the paper's BS.
- Every experiment trains the same number of steps from the same LoRA initialisation, and the
  families of one test modality share the projection's initialisation and the batch order. The claims
  are decided over ``seeds`` seeds (each its own patches, split and test patches) with a 95% t interval
  on the per-seed rank differences (the paper gives 95% intervals over its test set); a decoder loss
  that has not levelled off, or a family no better than the modality's most common report (CIDEr),
  makes a claim inconclusive.
- The review's own summary of paper 7 says medical foundation models are best particularly across
  modalities; reported-results.md says natural-domain models are: the cross-modality claim follows
  reported-results.md, and its evidence names both.
- The paper's numbers beside ours are only R2GenGPT's and XrayGPT's X-ray rows (reported-results.md);
  their split is not stated there, and they are set beside our in-modality modality-specific X-ray row.
- Profiles: smoke (about a minute on 2 CPU cores, one step, one seed: shows the pipeline works);
  cpu (CT, X-ray and pathology, the three real modalities, train the encoders; decoders are trained and
  tested on X-ray alone (``decode_on``), since one LoRA training of the 135M decoder takes most of a
  minute on 2 cores and three seeds of five decoders fill the 15 minutes; so the cpu claims rank the
  families over X-ray's 5 metrics only, 30 steps of batch 4 per decoder); full (all four modalities
  decoded, sized for one GPU with bf16 autocast; not timed on a GPU here).
"""

from __future__ import annotations

from dataclasses import dataclass

from reproductions.common.docstring import differences
from reproductions.common.numbers import mean_of_trees
from reproductions.metrics.images import FidFeatures
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
    seeds: int = 3  # each its own patches, split, encoders and decoders; the claims are decided over them
    patches_per_class: int = 60  # drawn per class of each modality (CT 7, X-ray 7, MR 3, pathology 4 classes)
    test_per_modality: int = 60  # of those, held out for testing (classes in turn)
    image_size: int = 64  # px, every patch; the Inception resizes to 299 itself
    cnn_width: int = 32
    cnn_features: int = 128
    cnn_epochs: int = 40
    cnn_lr: float = 2e-3
    decode_on: tuple[str, ...] = ()  # the modalities decoders are trained and tested on (empty: every one);
    # the others still train the encoders (the foundation CNNs, the next modality's specific CNN)
    prefix_tokens: int = 4  # image embeddings in front of the prompt
    lora_rank: int = 16
    lora_alpha: int = 32
    steps: int = 250  # decoder training steps per experiment (20 experiments per seed with every modality)
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
        if "cross-modality" in self.splits and len(self.modalities) < 3:
            raise ValueError("modalities: the cross-modality split needs at least three (with two, the foundation "
                             "CNN without the test modality is the other modality's specific CNN)")
        for name in ("seeds", "patches_per_class", "test_per_modality", "image_size", "cnn_width", "cnn_features",
                     "cnn_epochs", "prefix_tokens", "lora_rank", "lora_alpha", "steps", "batch_size",
                     "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if set(self.decode_on) - set(self.modalities) or len(set(self.decode_on)) != len(self.decode_on):
            raise ValueError(f"decode_on: choose distinct ones from the modalities ({', '.join(self.modalities)})")
        if self.image_size < 16:
            raise ValueError("image_size must be at least 16 (four stride-2 convolutions)")
        if self.test_per_modality >= 3 * self.patches_per_class:  # MR has the fewest classes: 3
            raise ValueError("test_per_modality must leave training patches: keep it below 3 x patches_per_class")
        if self.lr <= 0 or self.cnn_lr <= 0:
            raise ValueError("lr and cnn_lr must be positive")
        if self.examples < 0:
            raise ValueError("examples must not be negative")


PRESETS = {
    # three modalities, a handful of patches, one decoder step per experiment, short generations, one seed:
    # about a minute on 2 cores (the claims are inconclusive on one seed).
    "smoke": Config(modalities=("ct", "xray", "pathology"), seeds=1, patches_per_class=2, test_per_modality=3,
                    cnn_epochs=3, steps=1, batch_size=4, max_new_tokens=12, examples=1),
    # the three real modalities train the encoders, decoders learn and are tested on X-ray only (5 decoders per
    # seed, each about 45 s on 2 cores), 3 seeds: the claims decided within 15 minutes on 2 cores.
    "cpu": Config(modalities=("ct", "xray", "pathology"), decode_on=("xray",), patches_per_class=8,
                  test_per_modality=16, cnn_epochs=30, steps=30, batch_size=4, lr=3e-3, max_new_tokens=28),
    # every modality and the whole decoder, sized for one GPU (not timed on a GPU here).
    "full": Config(),
}


def main(config: Config, run: Run) -> Outcome:
    """Load the decoder, the Inception and the scorer once; per seed cut the patches, encode them with the
    three families, train and score a decoder per experiment; then report over the seeds."""
    decoder = model.load_decoder(config, run)
    inception = FidFeatures(run.device, batch_size=16)
    scorer = model.Scorer(run.device)
    try:
        trials = [model.trial(config, replica, inception, decoder, scorer) for replica in run.replicas(config.seeds)]
    finally:
        scorer.close()
    per_seed = [m for m, _ in trials]
    for seed in per_seed:
        seed["ranks"] = {split: report.mean_ranks(seed["scores"][split]) for split in config.splits}
    scores = mean_of_trees([seed["scores"] for seed in per_seed])  # {split: {family: {modality: scores}}}
    metrics = {**scores, "seeds": config.seeds, "floor": mean_of_trees([seed["floor"] for seed in per_seed]),
               "ranks": mean_of_trees([seed["ranks"] for seed in per_seed]), "per_seed": per_seed}
    train, test, generated = trials[0][1]  # the figures' examples are the first seed's
    n_classes = {m: len(train[m].classes) for m in config.modalities}  # the foundation CNN's chance
    return Outcome(metrics, report.rows(scores, config.seeds), report.claims(metrics, n_classes),
                   report.data_notes(train, test, config.seeds),
                   report.figures(scores, test, generated, config.decode_on or config.modalities, run),
                   differences(__doc__))
