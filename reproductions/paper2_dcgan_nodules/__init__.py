"""Paper 2: Chuquicusma, Hussein, Burt and Bagci 2018, "How to fool radiologists with generative
adversarial networks? A visual Turing test for lung cancer diagnosis" (ISBI), bib key
Chuquicusma2018Fool.

What is reproduced: a DCGAN trained on benign and malignant lung nodule patches, and the paper's
question, whether its nodules can be told from real ones, asked in two ways:
- machine detectability (our addition, which does not decide the paper's claim about people): four
  real-vs-generated classifiers
  of rising capacity (logistic regression on pixels, a random forest on intensity, gradient and
  spectrum features, an RBF SVM on 32 principal components, a small CNN), each trained on one half
  of a set of held-out real and generated patches and tested on the other half. For each observer:
  the false recognition rate FRR (generated judged real / generated), the true recognition rate TRR
  (real judged real / real) and accuracy; between observers, pairwise Cohen's kappa. The scoring is
  ``reproductions.common.reader_study.score``, the same code that scores people. Beside them, a
  control: the same observers asked to tell two halves of the held-out real patches apart (whole
  cases on each side), which reads what "cannot tell" looks like for them on this many patches.
  The DCGAN and both panels are trained afresh for each of ``seeds`` seeds; the claim is decided on
  the per-seed difference between the control's mean accuracy and the real-vs-generated one;
- the paper's own protocol for people: a blinded, shuffled visual Turing test of real and generated
  patches (real or generated? benign or malignant?) written into the run folder as
  ``reader_study/``, which the explorer's /reader-study page serves, recording each reader's answers
  and computing FRR, TRR, accuracy and Cohen's kappa between readers.
Also FID and KID (standard FID Inception) between held-out real and generated patches, beside the
FID between two real samples of the same size, and a class-agreement check standing in for the
readers' benign/malignant answers: two benign/malignant classifiers trained on the real training
patches (a logistic regression on a coarse 16 x 16 grid of block means, which sees a nodule's size
and extent, and a CNN at full resolution, which also sees texture) classify the generated patches.

How it differs from the paper, and why:
- Data: no labelled lung nodules exist offline, so by default the nodules are a phantom: benign
  (smooth, round, some calcified) and malignant (spiculated, irregular) nodules synthesised in lung
  patches of one real chest CT (reproductions.data.phantoms.lung_phantom). A user with LIDC-IDRI
  patches sets lidc to a folder with benign/ and malignant/ sub-folders.
- One class-conditional DCGAN (the one-hot class fed to generator and discriminator, the shared
  reproductions.common.dcgan) rather than one network per class: one training instead of two on the
  same budget, the two classes share what they have in common (the lung around the nodule), and
  every generated patch has an intended class, so the reader study can be balanced and its
  benign/malignant answers checked.
- Automatic observers do not stand in for the paper's two radiologists: what they measure is called
  machine detectability and shown as our addition; the paper's claim about people waits on the
  reader study prepared in reader_study/ (open it in the explorer at /reader-study), not testable
  until readers answer.
- The readers' benign/malignant answers are stood in for by two classifiers trained on the real
  training patches (block means for size and extent, a CNN that also sees texture), each scored on
  the generated patches against the class asked for.
- Real and generated patches are quantised to 8 bits (as a screen or a PNG shows them) before the
  observers and FID see them, so that no observer wins on numerical precision nobody can see.
- The observers', FID's and the reader study's real patches are held out from GAN training
  (whole cases), so a GAN that memorised its training set gains nothing.
- FID and KID (standard FID Inception) on a few dozen to a few hundred images per side are biased
  upwards, so FID is shown beside the FID between two real samples of the same size.
- The paper's per-reader FRR/TRR table was not found (reported-results.md): every paper cell reads
  "not reported", and the verdict tests the paper's qualitative claim by a stated rule.
- Profiles: smoke at 32 px with a narrow network and one seed (too few to decide: its verdict is
  always inconclusive); cpu at the paper's 64 px with a quarter of the DCGAN's width and three seeds;
  full at 64 px with its full width (1024 channels at 4x4) and three seeds, sized for one GPU but not
  timed on one. No profile can test the paper's claim, which is about people.
"""

from __future__ import annotations

from dataclasses import dataclass

from reproductions.common import dcgan
from reproductions.common.docstring import differences
from reproductions.outcome import Outcome
from reproductions.paper2_dcgan_nodules import model, report
from reproductions.run import Run


@dataclass(frozen=True)
class Config:
    lidc: str = ""  # folder of LIDC-IDRI nodule patches in benign/ and malignant/; empty: the lung phantom
    patches_per_class: int = 1500  # phantom: synthesised per class; LIDC: at most this many per class (0: all)
    size: int = 64  # px; the paper's 64, or 32
    holdout: float = 0.3  # share of each class's cases kept from the GAN: the observers', FID's, readers' reals
    width: int = 64  # DCGAN width: 64 is the paper's (1024 channels at 4x4 for 64 px)
    epochs: int = 150
    batch_size: int = 64
    lr: float = 2e-4
    observer_epochs: int = 30  # the CNN observer's and the class CNN's epochs
    fid_images: int = 500  # real and generated patches for FID / KID (each side); 0: skip
    fid_reference: bool = True  # also FID between two real samples of that size: what "no difference" reads
    reader_per_class: int = 10  # real and generated patches of each class in the reader study
    seeds: int = 3  # DCGAN trainings (each with both observer panels) the detectability verdict is decided on
    # fixed before the run: the observers' mean real-vs-generated accuracy may exceed the real-vs-real
    # control's by this much and still count as "cannot tell"
    detectability_tolerance: float = 0.1

    def __post_init__(self):
        if self.size not in dcgan.SIZES:
            raise ValueError(f"size: choose {' or '.join(map(str, dcgan.SIZES))} (the DCGAN's sizes), not {self.size}")
        for name in ("width", "epochs", "batch_size", "observer_epochs", "reader_per_class", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.patches_per_class < 0 or (not self.lidc and self.patches_per_class < 10):
            raise ValueError("patches_per_class: at least 10 per class for the phantom (0 means all only with lidc)")
        if not 0.05 <= self.holdout <= 0.8:
            raise ValueError(f"holdout: a share of the cases between 0.05 and 0.8, not {self.holdout}")
        if self.fid_images == 1 or self.fid_images < 0:
            raise ValueError("fid_images: 0 to skip FID, or at least 2")
        if not 0 <= self.detectability_tolerance < 0.5:
            raise ValueError("detectability_tolerance: an accuracy difference from 0 to below 0.5")
        if self.lr <= 0:
            raise ValueError("lr must be positive")


PRESETS = {
    # 32 px, a narrow DCGAN, few patches and epochs, FID on 8 images: about a minute on a 2-core CPU.
    "smoke": Config(patches_per_class=80, size=32, width=16, epochs=12, batch_size=32, observer_epochs=6,
                    fid_images=8, fid_reference=False, reader_per_class=4, seeds=1),
    # the paper's 64 px at a quarter of the DCGAN's width, three seeds, for a machine without a GPU.
    "cpu": Config(patches_per_class=500, size=64, width=16, epochs=60, batch_size=32, observer_epochs=15,
                  fid_images=64),
    # the paper's 64 px and full width; sized for one GPU in under ten minutes, not timed on one.
    "full": Config(),
}


def main(config: Config, run: Run) -> Outcome:
    data = model.load_nodules(config, run)  # 8-bit patches; whole cases held out from the GAN
    trials = [model.trial(data, config, replica) for replica in run.replicas(config.seeds)]
    first = trials[0]  # FID, the class check and the reader study use the first seed's DCGAN
    metrics = {"data": {"kind": data.note.kind, "train": int(len(data.train_x)), "held_out": int(len(data.real)),
                        "generated_for_observers": int(len(first.fake))},
               "seeds": config.seeds,
               "observers": [t.observers for t in trials], "control": [t.control for t in trials],
               "class_agreement": model.class_agreement(data, first.fake, first.fake_labels, config, run)}
    if config.fid_images:
        metrics["fid"] = model.fid_scores(first.G, data, config, run)
    metrics["reader_study"] = model.write_reader_study(first.G, data, config, run)
    metrics["training"] = [{key: values[-1] for key, values in t.history.items()} for t in trials]
    figures = report.figures(data, trials, metrics, run)
    return Outcome(metrics, report.rows(metrics), report.claims(metrics, config), [data.note], figures,
                   differences(__doc__), reader_study=model.STUDY_FOLDER)
