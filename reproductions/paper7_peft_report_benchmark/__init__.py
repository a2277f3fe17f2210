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
paper's two claims are decided by a rule on this run's scores (``scoring.claims``).

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
- MR stands in for the paper's ultrasound (no ultrasound image is available offline).
- The encoders stand in for the paper's families (its models, e.g. R2GenGPT, XrayGPT, USFM, PLIP,
  BiomedCLIP, cannot be had offline): ImageNet Inception-v3 for natural-domain models, CNNs trained
  here on the patch labels for modality-specific and foundation models. Encoders stay frozen; only
  LoRA and the projection train. The foundation CNN is trained on the training patches of all four
  modalities, the held-out one included (as real foundation models have seen every modality); the
  decoder never sees the held-out modality's reports. In the cross-modality split the
  modality-specific encoder is that of the next training modality in the order CT, X-ray, MR,
  pathology (the encoder of the held-out modality would have seen its labels).
- The decoder is SmolLM2-135M (4-bit release dequantised), not the paper's LLMs; BERTScore uses
  MiniLM-L6 (not the paper's backbone), so BS is not comparable with the paper's BS.
- Every experiment trains the same number of steps with the same LoRA initialisation, batch order
  and projection seed across families; one seed, no confidence intervals (the paper gives 95% CIs).
- Profiles: smoke (about a minute on 2 CPU cores, one training step: shows the pipeline works);
  cpu (a few hundred patches, 12 steps per experiment, minutes on a CPU); full (sized for one
  GPU in under ten minutes with bf16 autocast; not timed on a GPU here).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import torch

from reproductions.common.plotting import pyplot, save
from reproductions.outcome import DataNote, Outcome

from . import data, models, scoring
from .data import MODALITIES, TITLES

FAMILIES = ("natural", "specific", "foundation")
FAMILY_TITLES = {"natural": "natural-domain (Inception-v3)", "specific": "modality-specific (CNN)",
                 "foundation": "foundation (multi-modality CNN)"}
SPLITS = ("in-modality", "cross-modality")


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


# ---- encoders -----------------------------------------------------------------------------------

def encode(config: Config, run, train: dict, test: dict) -> tuple[dict, dict]:
    """Features ``{encoder: {modality: (train (N, d), test (M, d))}}`` and the CNNs' test accuracies.

    Encoders: "natural", "foundation" and "specific:<modality>"."""
    from reproductions.metrics.images import fid_inception

    features, accuracy = {}, {}
    inception = fid_inception().to(run.device)
    features["natural"] = {m: tuple(models.inception_features(inception, s[m].images, run.device) for s in (train, test))
                           for m in run.progress(config.modalities, "Inception features")}
    del inception
    cnn = dict(width=config.cnn_width, feature_dim=config.cnn_features, epochs=config.cnn_epochs, lr=config.cnn_lr,
               batch_size=32, run=run)
    for i, m in enumerate(config.modalities):
        net = models.train_cnn(train[m].images, train[m].labels, len(train[m].classes), gen=run.generator(10 + i), **cnn)
        features[f"specific:{m}"] = {o: tuple(models.cnn_features(net, s[o].images, run.device) for s in (train, test))
                                     for o in config.modalities}
        accuracy[f"specific:{m}"] = _accuracy(net, test[m], 0, run.device)
    offsets = np.cumsum([0] + [len(train[m].classes) for m in config.modalities])
    images = np.concatenate([train[m].images for m in config.modalities])
    labels = np.concatenate([train[m].labels + offsets[i] for i, m in enumerate(config.modalities)])
    net = models.train_cnn(images, labels, int(offsets[-1]), gen=run.generator(20), **cnn)
    features["foundation"] = {o: tuple(models.cnn_features(net, s[o].images, run.device) for s in (train, test))
                              for o in config.modalities}
    accuracy["foundation"] = {m: _accuracy(net, test[m], offsets[i], run.device) for i, m in enumerate(config.modalities)}
    return features, accuracy


@torch.no_grad()
def _accuracy(net, patches, offset: int, device) -> float:
    logits = net(torch.as_tensor(patches.images).to(device)).float().cpu()
    return float((logits.argmax(1).numpy() == patches.labels + offset).mean())


def experiments(config: Config) -> list[tuple[str, str, str, tuple[str, ...], str]]:
    """(split, family, test modality, training modalities, encoder) for every experiment."""
    mods = config.modalities
    plan = []
    for split in config.splits:
        for j, m in enumerate(mods):
            trained = (m,) if split == "in-modality" else tuple(o for o in mods if o != m)
            source = m if split == "in-modality" else mods[(j + 1) % len(mods)]
            for family in FAMILIES:
                plan.append((split, family, m, trained, f"specific:{source}" if family == "specific" else family))
    return plan


# ---- figures ------------------------------------------------------------------------------------


def plot_table(header, body, run) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(min(30, 2.5 + 1.05 * len(header)), 0.45 * len(body) + 1.6))
    ax.axis("off")
    shown = [[textwrap.fill(c, 34) if i == 0 else c for i, c in enumerate(r)] for r in body]
    tab = ax.table(cellText=shown, colLabels=[h.replace(" ", "\n") for h in header], loc="center", cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.scale(1, 1.9)
    for (r, c), cell in tab.get_celld().items():
        if c == 0:
            cell.set_width(0.16)
            cell.get_text().set_ha("left")
    ax.set_title("Report generation in the layout of the paper's table (review's Figure 10). Real images; SYNTHETIC "
                 "reports (templates from labels), so our scores measure template learning.\nBS = BERTScore "
                 "(MiniLM-L6 here: not comparable with the paper's). n.r. = not reported. MR stands in for ultrasound.",
                 fontsize=8)
    return save(fig, run, "table_fig10_layout.png", dpi=110)


def plot_scores(metrics: dict, modalities, run) -> str:
    plt = pyplot()
    splits = list(metrics)
    fig, axes = plt.subplots(len(splits), len(scoring.COLUMNS), figsize=(3.2 * len(scoring.COLUMNS), 3 * len(splits)),
                             squeeze=False)
    x = np.arange(len(modalities))
    for row, split in zip(axes, splits):
        for ax, (key, label) in zip(row, scoring.COLUMNS):
            for k, family in enumerate(FAMILIES):
                ax.bar(x + (k - 1) * 0.27, [metrics[split][family][m][key] for m in modalities], 0.27,
                       label=FAMILY_TITLES[family])
            ax.set_xticks(x, [TITLES[m] for m in modalities], fontsize=8)
            ax.set_title(f"{split}: {label}", fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Scores per encoder family (one seed). Reports are SYNTHETIC templates from labels; "
                 "BS = BERTScore (MiniLM-L6)", fontsize=10)
    fig.tight_layout()
    return save(fig, run, "scores_by_family.png", dpi=90, tight=False)


def plot_examples(test: dict, generated: dict, modalities, run) -> str:
    """One test patch per modality with its reference report and every family's output for it."""
    plt = pyplot()
    fig, axes = plt.subplots(2, len(modalities), figsize=(4.2 * len(modalities), 8), squeeze=False,
                             gridspec_kw={"height_ratios": [1, 1.5]})
    for top, bottom, m in zip(axes[0], axes[1], modalities):
        top.imshow(test[m].images[0].transpose(1, 2, 0), vmin=0, vmax=1)
        top.set_title(f"{TITLES[m]} test patch (real image)", fontsize=10)
        lines = [f"reference (synthetic): {test[m].reports[0]}"]
        lines += [f"{split.split('-')[0]} / {family}: {texts[0] or '(empty)'}"
                  for (split, family, mod), texts in generated.items() if mod == m]
        bottom.text(0, 1, "\n".join(textwrap.fill(t, 46) for t in lines), va="top", fontsize=6.5, family="monospace")
        for ax in (top, bottom):
            ax.axis("off")
    fig.suptitle("Reference report (SYNTHETIC: a template filled from the labels) and the reports generated for it",
                 fontsize=10)
    fig.tight_layout()
    return save(fig, run, "examples.png")


# ---- run ----------------------------------------------------------------------------------------

def run(config: Config, run) -> Outcome:
    from reproductions.common import smollm

    train, test, notes = {}, {}, []
    for i, m in enumerate(run.progress(config.modalities, "load patches")):
        patches = data.load_modality(m, config.patches_per_class, config.image_size, run.seed + 1000 * i)
        train[m], test[m] = data.split(patches, config.test_per_modality, run.rng(30 + i))
        notes.append(DataNote(f"{TITLES[m]} patches", "substitute" if m == "mr" else "real",
                              f"{len(train[m])} training and {len(test[m])} test patches from {patches.source}"
                              + ("; MR stands in for the paper's ultrasound" if m == "mr" else "")))
    notes.append(DataNote("reports", "synthetic", "every report is generated from the patch's labels by a template "
                          "(region, tercile of a measured intensity, a fixed finding, one of two closing phrases); no "
                          "real report exists for these images. The text metrics measure how well each system learns "
                          "label-conditioned templates, not radiology language."))
    notes.append(DataNote("decoder weights", "substitute", smollm.NOTE + "; stands in for the paper's LLM decoders"))

    features, accuracy = encode(config, run, train, test)
    model, tokenizer = smollm.load(run.device)
    decoder = models.ReportDecoder(model, tokenizer, config.lora_rank, config.lora_alpha, run.device)
    scorer = scoring.Scorer(run.device)
    metrics = {split: {f: {} for f in FAMILIES} for split in config.splits}
    details, generated = [], {}
    plan = experiments(config)
    try:
        for split, family, m, trained, encoder in run.progress(plan, "train and generate"):
            feats = torch.cat([features[encoder][o][0] for o in trained])
            reports = [r for o in trained for r in train[o].reports]
            offset = 100 + 10 * SPLITS.index(split) + config.modalities.index(m)  # shared by the three families
            prefix, losses = decoder.train(feats, reports, config.prefix_tokens, config.steps, config.batch_size,
                                           config.lr, run.generator(offset), run)
            texts = decoder.generate(prefix, features[encoder][m][1], config.max_new_tokens, run)
            metrics[split][family][m] = scorer.score(list(test[m].reports), texts)
            generated[(split, family, m)] = texts
            details.append({"split": split, "family": family, "test": m, "trained_on": list(trained),
                            "encoder": encoder, "first_loss": losses[0], "last_loss": losses[-1],
                            "examples": [{"reference": r, "generated": t}
                                         for r, t in zip(test[m].reports[:config.examples], texts)]})
    finally:
        scorer.close()

    header, body = scoring.table(metrics, FAMILIES, FAMILY_TITLES, config.modalities, TITLES)
    table_notes = ["BS: BERTScore F1 with MiniLM-L6 here (the paper's backbone differs): not comparable.",
                   "Our reports are synthetic (templates from labels): our scores measure template learning.",
                   "n.r.: not reported in reported-results.md, Paper 7 (only R2GenGPT and XrayGPT on X-ray).",
                   "MR stands in for the paper's ultrasound column."]
    (run.folder / "table_fig10_layout.md").write_text(scoring.table_markdown(header, body, table_notes))
    figures = [plot_table(header, body, run), plot_scores(metrics, config.modalities, run)]
    figures.append(plot_examples(test, generated, config.modalities, run))
    test_sizes = {m: len(test[m]) for m in config.modalities}
    results = {**metrics, "encoder_accuracy": accuracy, "test_sizes": test_sizes, "experiments": details,
               "ranks": {s: scoring.mean_ranks(metrics[s], FAMILIES) for s in config.splits}}
    differences = [
        "Reports are synthetic: generated from labels by templates, as no real report exists for the bundled images; "
        "text metrics measure learning of label-conditioned templates, not radiology language.",
        "Real images from one scan or slide per modality (chest CT, one chest radiograph, the MNI152 template, one "
        "IHC image); patches of one image are not independent patients and may overlap between training and test.",
        "MR (MNI152 brain) in place of the paper's ultrasound: no ultrasound image is available offline.",
        "Encoder families stand in for the paper's models: ImageNet Inception-v3 (the FID weights) for natural-domain, "
        "a small CNN trained here on one modality's labels for modality-specific, the same CNN trained on all four "
        "modalities' labels for the foundation family; encoders frozen, LoRA and a prefix projection trained.",
        "In cross-modality runs the modality-specific encoder is the next training modality's (CT -> X-ray -> MR -> "
        "pathology -> CT); the foundation CNN saw the held-out modality's training images and labels, the decoder "
        "never saw its reports.",
        f"Decoder: {smollm.NOTE}, LoRA r={config.lora_rank} on q/k/v/o, {config.prefix_tokens} image prefix tokens, "
        f"{config.steps} steps of batch {config.batch_size} per experiment, greedy decoding of up to "
        f"{config.max_new_tokens} tokens.",
        "BERTScore with MiniLM-L6 (roberta-large cannot be downloaded): not comparable with the paper's BS.",
        "One seed and no confidence intervals; the paper reports 95% intervals. The claims are decided only with at "
        f"least {scoring.MIN_TEST_PATCHES} test patches per modality (this run: {min(test_sizes.values())} in the "
        "smallest); with fewer they are not testable here.",
        "The review's own summary of paper 7 says medical foundation models are best particularly across modalities; "
        "reported-results.md says natural-domain models are: the cross-modality claim follows reported-results.md.",
        "The paper's numbers beside ours are only R2GenGPT's and XrayGPT's X-ray rows (reported-results.md); their "
        "split is not stated there, and they are set beside our in-modality modality-specific X-ray row.",
    ]
    return Outcome(results, scoring.rows(metrics, FAMILIES, FAMILY_TITLES, TITLES),
                   scoring.claims(metrics, FAMILIES, FAMILY_TITLES, test_sizes, accuracy, TITLES,
                                  {m: len(train[m].classes) for m in config.modalities}), notes, figures, differences)

