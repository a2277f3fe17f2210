"""Four outcomes for a paper's claim, decided on several seeds with a 95% interval and a tolerance
written into the rule before the run.

- held: the interval lies on the claim's side (see ``decide`` for each kind of rule);
- did not hold: the interval rules out what the claim says;
- inconclusive: the interval straddles the line, fewer than ``MIN_SEEDS`` seeds stand behind the
  numbers, a seed gave no number, or a sanity gate failed (a model still training, a method that
  does not beat its degraded input): the reason is always given;
- not testable here: the data or the people the claim needs are absent.

A rule's quantity is oriented so that a positive value favours the paper's claim (for "the DDPM's
FID is lower", the GAN's FID minus the DDPM's, per seed). Seeds shared by both arms give paired
differences, so the interval is a t interval on the per-seed differences.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

OUTCOMES = ("held", "did not hold", "inconclusive", "not testable here")
HELD, NOT_HELD, INCONCLUSIVE, NOT_TESTABLE = OUTCOMES
MIN_SEEDS = 3  # a verdict on fewer seeds (or folds) is inconclusive
LEVEL = 0.95
KINDS = ("better", "no worse")
CV_METHOD = "corrected resampled t"  # an interval over cross-validation folds rather than seeds
CONVERGED_SHARE = 0.05  # a loss that still falls by more than this share over its last tenth has not converged
MIN_TAIL = 10  # values in that tenth at the least (the last 10 of a 30-epoch curve): fewer cannot be read


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` seeds (or folds) with its two-sided 95% interval; ``low`` and ``high`` are
    NaN when fewer than two finite values stand behind it."""
    mean: float
    low: float
    high: float
    n: int
    method: str  # "t" on the values, or "paired t" on per-seed differences

    @property
    def unit(self) -> str:
        """What the ``n`` values are: the folds of a cross-validation or training seeds."""
        return "folds" if self.method == CV_METHOD else "seeds"

    @property
    def complete(self) -> bool:
        return not any(math.isnan(v) for v in (self.mean, self.low, self.high))

    def text(self, digits: int = 3) -> str:
        if math.isnan(self.mean):
            return f"no number ({self.n} {self.unit})"
        if not self.complete:
            return f"{self.mean:.{digits}g} ({self.n} {self.unit[:-1]}, no interval)"
        return (f"{self.mean:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}] "
                f"({LEVEL:.0%} {self.method} interval, {self.n} {self.unit})")

    def as_dict(self) -> dict:
        """For JSON: NaN as null."""
        return {k: _json_number(getattr(self, k)) for k in ("mean", "low", "high")} | {"n": self.n,
                                                                                        "method": self.method}

    @classmethod
    def from_dict(cls, d: dict) -> Interval:
        return cls(*(math.nan if d[k] is None else float(d[k]) for k in ("mean", "low", "high")), d["n"], d["method"])


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def interval(values: Iterable[float], method: str = "t") -> Interval:
    """The mean of ``values`` (one per seed) with a Student t interval; a NaN among them (a seed that
    gave no number) makes the mean NaN, so the claim cannot be decided on the others alone."""
    return _t_interval(values, method, 0.0)


def _t_interval(values: Iterable[float], method: str, extra_share: float) -> Interval:
    """A t interval whose variance of the mean is the values' variance times 1/n + ``extra_share``."""
    x = np.asarray(list(values), dtype=float)
    n = len(x)
    if n == 0 or np.isnan(x).any():
        return Interval(math.nan, math.nan, math.nan, n, method)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, method)
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1) * math.sqrt((1 / n + extra_share) * x.var(ddof=1)))
    return Interval(mean, mean - half, mean + half, n, method)


def per_seed(metrics: dict, value) -> list[float]:
    """``value(seed_metrics)`` for each seed of ``metrics["per_seed"]``, a missing value as NaN (so that
    no verdict is drawn without it: see ``interval``)."""
    return [math.nan if (v := value(seed)) is None else float(v) for seed in metrics["per_seed"]]


def paired(a: Sequence[float], b: Sequence[float]) -> Interval:
    """The interval of ``a - b`` seed by seed (both arms trained on the same seeds)."""
    if len(a) != len(b):
        raise ValueError(f"paired interval: {len(a)} values against {len(b)}; the seeds must match")
    return interval(np.subtract(np.asarray(a, float), np.asarray(b, float)), "paired t")


def cv_interval(values: Sequence[float], test_share: float) -> Interval:
    """The mean of per-fold values (paired differences of two arms over the same outer folds, of one
    or more repeats of k-fold cross-validation) with the corrected resampled t interval of Nadeau and
    Bengio (2003): folds share most of their training data, so the spread over folds understates the
    spread over training sets; the variance is scaled by 1/n + ``test_share`` (test over training
    size: 1/(k - 1) for k folds) instead of 1/n."""
    return _t_interval(values, CV_METHOD, test_share)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, resamples: int = 4000) -> Interval:
    """The mean of ``a - b`` over seeds and test items, ``a`` and ``b`` (seeds, items) scored on the
    same items by models of the same seeds, with a percentile interval from resampling seeds and items
    together (both levels with replacement, the same draw for both arms), so that the interval holds
    the spread of the training seeds and of the test set alike."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"paired bootstrap: two (seeds, items) arrays of one shape, not {a.shape} and {b.shape}")
    d = a - b  # (S, N)
    seeds, items = d.shape
    if np.isnan(d).any():
        return Interval(math.nan, math.nan, math.nan, seeds, "paired bootstrap")
    if seeds < 2:
        return Interval(float(d.mean()), math.nan, math.nan, seeds, "paired bootstrap")
    s = rng.integers(0, seeds, (resamples, seeds))  # (R, S) seeds drawn
    i = rng.integers(0, items, (resamples, items))  # (R, N) items drawn
    means = d[s[:, :, None], i[:, None, :]].mean(axis=(1, 2))  # (R, S, N) -> (R,)
    low, high = np.quantile(means, [0.5 - LEVEL / 2, 0.5 + LEVEL / 2])
    return Interval(float(d.mean()), float(low), float(high), seeds, "paired bootstrap")


@dataclass(frozen=True)
class Rule:
    """A claim's decision rule, fixed before the run.

    ``quantity`` says what is measured per seed, oriented so that positive favours the claim;
    ``kind`` is "better" (the claim says one thing beats another) or "no worse" (it says one thing
    is as good as another, or below a bound); ``tolerance`` (>= 0, in the quantity's unit) is the
    smallest difference that matters for "better" and the allowed shortfall for "no worse"."""
    quantity: str
    kind: str
    tolerance: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"rule kind {self.kind!r} is not one of {KINDS}")
        if not self.tolerance >= 0:
            raise ValueError(f"rule tolerance must be 0 or more, not {self.tolerance}")

    @property
    def text(self) -> str:
        t = f"{self.tolerance:g}"
        if self.kind == "better":
            return (f"{self.quantity}: held if its {LEVEL:.0%} interval lies above 0 and its mean reaches {t}; "
                    f"did not hold if the interval lies below {t}; otherwise inconclusive")
        return (f"{self.quantity}: held if its {LEVEL:.0%} interval lies above -{t}; did not hold if it lies "
                f"below -{t}; otherwise inconclusive")


@dataclass(frozen=True)
class Gate:
    """A sanity check a claim's models must pass before the claim is decided. A gate ``against_only``
    guards a "did not hold" alone: it is for a failure that can only understate what the claim says
    (a diffusion model still training has memorised less than it will), so the claim may hold
    without it but is not refuted while it fails."""
    name: str
    passed: bool
    detail: str
    against_only: bool = False

    def as_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "detail": self.detail, "against_only": self.against_only}


def _failed(gates: Sequence[Gate]) -> str:
    """The failed gates as a reason ("" when every gate passed)."""
    return "; ".join(f"{g.name}: {g.detail}" for g in gates if not g.passed)


def decide(rule: Rule, estimate: Interval, gates: Sequence[Gate] = ()) -> tuple[str, str]:
    """The outcome of ``rule`` on ``estimate`` and the reason when it is inconclusive.

    "better": held when low > 0 and mean >= tolerance; did not hold when high < tolerance (an
    advantage that matters is ruled out: a tie counts against the claim); "no worse": held when
    low > -tolerance, did not hold when high < -tolerance. Failed gates come first; a failed gate
    ``against_only`` turns a "did not hold" alone into inconclusive."""
    if failed := _failed([g for g in gates if not g.against_only]):
        return INCONCLUSIVE, failed
    if math.isnan(estimate.mean):
        return INCONCLUSIVE, f"a seed gave no number ({estimate.n} seeds)"
    if estimate.n < MIN_SEEDS or not estimate.complete:
        return INCONCLUSIVE, f"{estimate.n} seeds behind the numbers; a verdict needs at least {MIN_SEEDS}"
    line = rule.tolerance if rule.kind == "better" else -rule.tolerance
    if rule.kind == "better" and estimate.low > 0 and estimate.mean >= line:
        return HELD, ""
    if rule.kind == "no worse" and estimate.low > line:
        return HELD, ""
    if estimate.high < line:
        failed = _failed([g for g in gates if g.against_only])
        return (INCONCLUSIVE, f"the interval lies below {line:g}, but {failed}") if failed else (NOT_HELD, "")
    return INCONCLUSIVE, f"the interval {estimate.low:.3g} to {estimate.high:.3g} straddles {line:g}"


def single_run(held: bool | None, seeds: int | None, gates: Sequence[Gate] = ()) -> tuple[str, str]:
    """The outcome of a claim a paper decided with a yes/no rule on one run's numbers: not testable
    when there was nothing to decide (``held`` None), held or not when nothing random enters
    (``seeds`` None: counts over the corpus), otherwise inconclusive unless enough seeds stand behind it."""
    if held is None:
        return NOT_TESTABLE, ""
    if failed := _failed(gates):
        return INCONCLUSIVE, failed
    if seeds is not None and seeds < MIN_SEEDS:
        pointed = HELD if held else NOT_HELD
        return INCONCLUSIVE, (f"decided on {seeds} seed without an interval (a verdict needs at least {MIN_SEEDS}); "
                              f"this run's numbers point to '{pointed}'")
    return (HELD if held else NOT_HELD), ""


def converged(name: str, losses: Sequence[float], share: float = CONVERGED_SHARE) -> Gate:
    """Gate: ``losses`` (one per step or epoch, in order) no longer fall by more than ``share`` of
    their level over the last tenth of training (at least ``MIN_TAIL`` values). The fall is read off
    a Theil-Sen line through that tail against its median, so neither the noise of single steps nor
    a few spikes decide it."""
    fall = _fall(losses)
    if math.isinf(fall):
        return Gate(f"{name} converged", False, f"only {len(losses)} loss values: convergence cannot be read")
    passed = fall <= share
    return Gate(f"{name} converged", bool(passed),
                f"loss fell by {fall:.1%} over the last tenth of training "
                f"({'within' if passed else 'more than'} the {share:.0%} allowed)")


def all_converged(name: str, curves: dict[str, Sequence[float]], share: float = CONVERGED_SHARE) -> Gate:
    """Gate: every one of several trainings (``curves``: label -> losses, "organs, seed 2") converged;
    the detail counts those that did not and names the one still falling most."""
    falls = {label: _fall(losses) for label, losses in curves.items()}  # inf: too few values, a failure
    failed = [label for label, fall in falls.items() if not fall <= share]
    if not failed:
        return Gate(f"{name} converged", True, f"every loss levelled off ({len(falls)} trainings)")
    worst = max(failed, key=falls.get)
    most = "too few values to read" if math.isinf(falls[worst]) else f"{falls[worst]:.1%}"
    return Gate(f"{name} converged", False,
                f"{len(failed)} of {len(falls)} trainings still falling by more than {share:.0%} over their last "
                f"tenth (most: {worst}, {most})")


def _fall(losses: Sequence[float]) -> float:
    """The fall over the last tenth (at least ``MIN_TAIL`` values) as a share of the tail's median:
    the Theil-Sen slope (the median of the pairwise slopes, which up to about 29% of spikes cannot
    move) times the tail's length. inf when too few values stand behind it."""
    y = np.asarray([v for v in losses if v is not None], dtype=float)
    y = y[np.isfinite(y)]
    tail = y[-max(MIN_TAIL, len(y) // 10):]
    if len(tail) < MIN_TAIL:
        return math.inf
    slope = stats.theilslopes(tail).slope
    return float(-slope * (len(tail) - 1) / max(abs(float(np.median(tail))), 1e-12))


def stopped_early(name: str, stopped: dict[str, bool]) -> Gate:
    """Gate: every one of several trainings with early stopping (``stopped``: label -> whether its
    validation score stopped improving before the step cap) stopped on its own; one that reached
    the cap was still improving."""
    capped = [label for label, early in stopped.items() if not early]
    if not capped:
        return Gate(f"{name} converged", True, f"every training stopped on its validation score ({len(stopped)})")
    return Gate(f"{name} converged", False, f"{len(capped)} of {len(stopped)} trainings reached the step cap while "
                                            f"their validation score still improved (first: {capped[0]})")


def beats_input(name: str, method: Interval, degraded: Interval, higher_is_better: bool = True) -> Gate:
    """Gate: a restoration method's mean beats the degraded input it starts from (bicubic for
    super-resolution, the noisy image for denoising); one that does not is not comparable."""
    better = method.mean > degraded.mean if higher_is_better else method.mean < degraded.mean
    return Gate(f"{name} beats its input", bool(better),
                f"{method.mean:.4g} against the input's {degraded.mean:.4g}")
