"""Paper 3's reported numbers (reported-results.md, Paper 3), the rows beside ours, and the claims
with the rule that decides them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reproductions.outcome import Claim, Reported, Row
from reproductions.paper3_gan_augmentation.protocol import name_of

if TYPE_CHECKING:
    from reproductions.paper3_gan_augmentation import Config

SOURCE = "reported-results.md, Paper 3"
CLASSIC, GAN, ACGAN_SOURCE = (f"{SOURCE}: classic augmentation alone (ISBI abstract and extended version)",
                              f"{SOURCE}: adding GAN-synthesised lesions (ISBI abstract and extended version)",
                              f"{SOURCE}: extended version, ACGAN augmentation")
PAPER = {  # (metric, setting) -> the paper's number in %, with where it was read
    ("accuracy", "none"): Reported(57, f"{SOURCE}: total accuracy (extended version), no augmentation 57%"),
    ("accuracy", "classic"): Reported(78.6, f"{SOURCE}: total accuracy (extended version), classic augmentation "
                                            "plateaus at 78.6% (from 5000 samples per fold)"),
    ("accuracy", "gan"): Reported(85.7, f"{SOURCE}: total accuracy (extended version), classic 5000 + synthetic "
                                        "3000 per fold gives 85.7%"),
    ("sensitivity", "classic"): Reported(78.6, f"{CLASSIC}: sensitivity 78.6%"),
    ("specificity", "classic"): Reported(88.4, f"{CLASSIC}: specificity 88.4%"),
    ("sensitivity", "gan"): Reported(85.7, f"{GAN}: sensitivity 85.7%"),
    ("specificity", "gan"): Reported(92.4, f"{GAN}: specificity 92.4%"),
    ("sensitivity", "acgan"): Reported(81.3, f"{ACGAN_SOURCE}: 81.3% / 90.0%"),
    ("specificity", "acgan"): Reported(90.0, f"{ACGAN_SOURCE}: 81.3% / 90.0%"),
    ("parameters", ""): Reported(1.3, f"{SOURCE}: classifier of about 1.3M parameters"),
    ("plateau", ""): Reported(5000, f"{SOURCE}: classic augmentation plateaus from 5000 samples per fold"),
    ("synthetic", ""): Reported(3000, f"{SOURCE}: classic 5000 + synthetic 3000 per fold"),
}


CEILING = 0.99  # a baseline this close to perfect leaves no room to show a rise


def paired_rise(before: dict, after: dict, key: str) -> tuple[bool | None, str]:
    """Held when the mean rise over folds is above 0 and above the fold-to-fold spread (the sample
    standard deviation of the per-fold rises); None when ``before`` is already at the ceiling."""
    rises = np.array([a[key] - b[key] for a, b in zip(after["folds"], before["folds"])])
    spread = float(rises.std(ddof=1)) if len(rises) > 1 else 0.0
    text = (f"{key.replace('_', ' ')} {100 * before['mean'][key]:.1f}% -> {100 * after['mean'][key]:.1f}% "
            f"(mean rise {100 * rises.mean():+.1f} points, fold spread {100 * spread:.1f})")
    if before["mean"][key] >= CEILING:
        return None, text + "; the baseline is at the ceiling, so a rise cannot show"
    return bool(rises.mean() > 0 and rises.mean() > spread), text


def claims(settings: dict, plateau: int, config: Config) -> list[Claim]:
    none, classic = settings["no augmentation"], settings[name_of("classic", plateau, 0)]
    gan = settings[name_of("DCGAN", plateau, config.gan_amounts[-1])]
    rule = " Rule: held when the mean rise over folds is positive and larger than its fold-to-fold spread."
    held, text = paired_rise(none, classic, "accuracy")
    out = [Claim("Classic augmentation raises total accuracy over no augmentation (57% -> 78.6%)", SOURCE, held,
                 f"none -> classic {plateau}: {text}.{rule}")]
    verdicts = [paired_rise(classic, gan, k) for k in ("mean_sensitivity", "mean_specificity")]
    held = None if None in (v for v, _ in verdicts) else all(v for v, _ in verdicts)
    out.append(Claim("Adding DCGAN lesions on top of the classic plateau raises sensitivity and specificity "
                     "(78.6/88.4 -> 85.7/92.4)", SOURCE, held,
                     f"classic {plateau} -> + DCGAN {config.gan_amounts[-1]}: "
                     + "; ".join(t for _, t in verdicts) + "." + rule))
    step, step_text = paired_rise(classic, gan, "accuracy")
    flat = plateau < config.classic_amounts[-1]
    shape = None if step is None else bool(flat and step)
    out.append(Claim("Accuracy plateaus under classic augmentation, then steps up with synthetic lesions", SOURCE,
                     shape, f"classic plateau at {plateau} added samples per fold (rule: smallest amount within "
                     f"{100 * config.plateau_tolerance:.1f} points of the best classic mean accuracy on the test "
                     f"folds; the curve "
                     f"{'flattens before' if flat else 'is still rising at'} its largest amount, "
                     f"{config.classic_amounts[-1]}); then the synthetic step: {step_text}.{rule}"))
    if config.acgan:
        acgan = settings[name_of("ACGAN", plateau, config.gan_amounts[-1])]
        held, text = paired_rise(acgan, gan, "mean_sensitivity")
        out.append(Claim("One DCGAN per class helps more than one ACGAN (sensitivity 85.7% vs 81.3%)",
                         f"{SOURCE}: extended version", held, f"ACGAN -> DCGAN: {text}.{rule}"))
    else:
        out.append(Claim("One DCGAN per class helps more than one ACGAN (sensitivity 85.7% vs 81.3%)",
                         f"{SOURCE}: extended version", None, "ACGAN not run in this profile (--set acgan=true)."))
    return out


# ---- rows ---------------------------------------------------------------------------------------


def rows(settings: dict, plateau: int, config: Config, params: int) -> list[Row]:
    top = config.gan_amounts[-1]
    chosen = {"none": "no augmentation", "classic": name_of("classic", plateau, 0),
              "gan": name_of("DCGAN", plateau, top)}
    if config.acgan:
        chosen["acgan"] = name_of("ACGAN", plateau, top)
    missing = Reported.missing(f"{SOURCE}: not reported")
    out = []
    for metric, key in (("accuracy", "accuracy"), ("sensitivity", "mean_sensitivity"),
                        ("specificity", "mean_specificity")):
        for setting, name in chosen.items():
            s = settings[name]
            out.append(Row("total accuracy (%)" if metric == "accuracy" else f"mean {metric} (%)", name,
                           100 * s["mean"][key], PAPER.get((metric, setting), missing),
                           note=f"mean over {config.folds} folds, std {100 * s['std'][key]:.1f}"))
    if not config.acgan:
        out += [Row(f"mean {m} (%)", "classic + ACGAN", None, PAPER[(m, "acgan")], note="run with --set acgan=true")
                for m in ("sensitivity", "specificity")]
    for setting, name in chosen.items():
        for cls, values in settings[name]["pooled"]["per_class"].items():
            for metric in ("sensitivity", "specificity"):
                out.append(Row(f"{metric} (%)", f"{name} / {cls}", 100 * values[metric], missing,
                               note="pooled over the folds' test lesions"))
    out += [Row("classifier parameters (millions)", f"{config.size} px, widths {config.widths}", params / 1e6,
                PAPER[("parameters", "")], None),
            Row("classic samples added per fold at the plateau", "classic", plateau, PAPER[("plateau", "")], None),
            Row("synthetic samples added per fold", "classic + DCGAN", top, PAPER[("synthetic", "")], None)]
    return out


