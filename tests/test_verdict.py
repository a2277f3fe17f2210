"""The four outcomes on constructed numbers: intervals, rules with a tolerance, seeds, gates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reproductions.outcome import Claim
from reproductions.common.numbers import mean_of_trees
from reproductions.verdict import (HELD, INCONCLUSIVE, NOT_HELD, NOT_TESTABLE, Gate, Interval, Rule, all_converged,
                                   beats_input, converged, cv_interval, decide, interval, paired, paired_bootstrap,
                                   single_run,
                                   stopped_early)


def test_the_t_interval_is_the_textbook_one():
    got = interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(0.975, 2) = 4.3027: half width 4.3027 / sqrt(3) = 2.4841
    assert (got.mean, round(got.low, 4), round(got.high, 4), got.n) == (2.0, -0.4841, 4.4841, 3)
    assert paired([3.0, 4.0, 5.0], [2.0, 2.0, 2.0]) == Interval(2.0, got.low, got.high, 3, "paired t")
    with pytest.raises(ValueError, match="seeds must match"):
        paired([1.0, 2.0], [1.0])


def test_a_seed_without_a_number_or_a_single_seed_decides_nothing():
    rule = Rule("gain", "better")
    assert math.isnan(interval([0.5, float("nan"), 0.6]).mean)  # never decided on the other seeds alone
    assert decide(rule, interval([0.5, float("nan"), 0.6]))[0] == INCONCLUSIVE
    outcome, reason = decide(rule, interval([0.5]))
    assert outcome == INCONCLUSIVE and "1 seeds" in reason and "at least 3" in reason
    assert decide(rule, interval([0.5, 0.51]))[0] == INCONCLUSIVE  # two seeds: still too few
    assert interval([0.5]).text() == "0.5 (1 seed, no interval)"


def test_better_needs_the_interval_above_zero_and_the_mean_at_the_tolerance():
    rule = Rule("Dice of GAN-augmented minus classic", "better", tolerance=0.02)
    assert decide(rule, interval([0.05, 0.06, 0.07]))[0] == HELD
    assert decide(rule, interval([0.011, 0.012, 0.013]))[0] == NOT_HELD  # reliably better, but by less than matters
    assert decide(rule, interval([-0.002, 0.0, 0.002]))[0] == NOT_HELD  # a tie counts against "better"
    assert decide(rule, interval([-0.08, -0.07, -0.06]))[0] == NOT_HELD
    outcome, reason = decide(rule, interval([-0.05, 0.03, 0.11]))  # the spread over seeds covers both sides
    assert outcome == INCONCLUSIVE and "straddles 0.02" in reason


def test_no_worse_allows_the_stated_shortfall():
    rule = Rule("accuracy of LoRA minus full fine-tuning", "no worse", tolerance=0.01)
    assert decide(rule, interval([-0.004, -0.005, -0.006]))[0] == HELD  # within the 0.01 allowed
    assert decide(rule, interval([-0.03, -0.031, -0.032]))[0] == NOT_HELD
    assert decide(rule, interval([-0.05, 0.0, 0.05]))[0] == INCONCLUSIVE
    bound = Rule("0.6 minus the observers' accuracy", "no worse")  # "below a bound": tolerance 0
    assert decide(bound, interval([0.1, 0.09, 0.11]))[0] == HELD
    assert decide(bound, interval([-0.4, -0.39, -0.41]))[0] == NOT_HELD


@given(st.lists(st.floats(-1, 1), min_size=3, max_size=8), st.floats(0, 0.2),
       st.sampled_from(["better", "no worse"]))
def test_the_outcomes_are_exclusive_and_shifting_the_numbers_up_never_hurts(values, tolerance, kind):
    rule = Rule("q", kind, tolerance)
    order = {NOT_HELD: 0, INCONCLUSIVE: 1, HELD: 2}
    base, _ = decide(rule, interval(values))
    shifted, _ = decide(rule, interval(np.add(values, 0.5)))
    assert base in order and order[shifted] >= order[base]


def test_the_cross_validation_interval_widens_the_plain_t_for_shared_training_folds():
    rises = [0.05, 0.08, 0.02, 0.06, 0.04, 0.07, 0.03, 0.05, 0.06]  # 3 repeats of 3 folds
    plain, corrected = interval(rises), cv_interval(rises, 1 / 2)
    assert corrected.mean == pytest.approx(plain.mean) and corrected.method == "corrected resampled t"
    widening = (corrected.high - corrected.mean) / (plain.high - plain.mean)
    assert widening == pytest.approx(np.sqrt((1 / 9 + 1 / 2) * 9))  # the variance x (1/n + 1/2) instead of 1/n
    assert np.isnan(cv_interval([0.1, float("nan"), 0.2], 0.5).mean)
    assert corrected.text().endswith("interval, 9 folds)") and plain.text().endswith("9 seeds)")


def test_a_gate_against_only_keeps_a_claim_from_being_refuted_but_not_from_holding():
    still_training = Gate("DDPM converged", False, "loss fell by 12%", against_only=True)
    rule = Rule("memorisation excess", "better", 0.05)
    assert decide(rule, interval([0.10, 0.12, 0.14]), [still_training]) == (HELD, "")
    outcome, reason = decide(rule, interval([0.00, 0.01, 0.02]), [still_training])
    assert outcome == INCONCLUSIVE and "lies below 0.05, but DDPM converged: loss fell by 12%" in reason
    assert decide(rule, interval([0.00, 0.01, 0.02]), [Gate("DDPM converged", True, "", against_only=True)])[0] \
        == NOT_HELD
    capped = stopped_early("U-Net", {"real, seed 0": True, "GAN, seed 1": False})
    assert not capped.passed and "1 of 2 trainings reached the step cap" in capped.detail
    assert "GAN, seed 1" in capped.detail
    assert stopped_early("U-Net", {"real, seed 0": True}).passed


def test_the_convergence_gate_reads_a_robust_slope_on_a_tail_long_enough():
    rng = np.random.default_rng(0)
    level = np.r_[np.linspace(0.01, 0.002, 900), np.full(100, 0.002)]
    spiky = level * (1 + 0.05 * rng.standard_normal(1000))
    spiky[[930, 960, 990]] = 0.02  # three spikes ten times the level, late in the tail
    assert converged("autoencoder", spiky).passed  # a few spikes are not a fall
    late_dip = np.r_[np.full(990, 0.002), np.linspace(0.002, 0.0015, 10)]
    assert converged("autoencoder", late_dip).passed  # 10 of 100 tail values cannot move the median
    falling = np.linspace(1.0, 0.8, 30)  # a 30-epoch curve: its tail is its last 10 epochs, not 3
    assert not converged("GCML", falling).passed and "fell by 7" in converged("GCML", falling).detail
    assert not converged("GCML", np.linspace(1.0, 0.8, 9)).passed  # under 10 values: cannot be read


def test_a_failed_gate_makes_the_claim_inconclusive_with_its_reason():
    still_falling = converged("U-Net", np.linspace(1.0, 0.5, 400))  # falls steadily to the end
    assert not still_falling.passed and "more than the 5% allowed" in still_falling.detail
    flat = converged("U-Net", np.r_[np.linspace(1.0, 0.3, 360), 0.3 + 0.01 * np.sin(np.arange(40))])
    assert flat.passed  # noise around a plateau is not a fall
    assert not converged("GAN", [1.0, 0.9]).passed  # too few points to read
    plateau = np.r_[np.linspace(1.0, 0.3, 360), [0.3] * 40]
    several = all_converged("DDPM", {"seed 0": plateau, "seed 1": np.linspace(1.0, 0.5, 400), "seed 2": [1.0, 0.9]})
    assert not several.passed and several.detail.startswith("2 of 3 trainings still falling")
    assert "(most: seed 2, too few values to read)" in several.detail  # one that cannot be read is the worst
    assert all_converged("DDPM", {"seed 0": plateau}).passed
    sr = beats_input("DDPM x2", interval([33.9, 34.0, 34.1]), interval([34.9, 34.9, 34.9]))
    assert not sr.passed and "34.9" in sr.detail
    outcome, reason = decide(Rule("PSNR gain", "better"), interval([1.0, 1.1, 1.2]), [flat, sr])
    assert outcome == INCONCLUSIVE and reason.startswith("DDPM x2 beats its input")


def test_one_run_yes_or_no_points_without_deciding():
    assert single_run(None, 1) == (NOT_TESTABLE, "")
    assert single_run(True, None) == (HELD, "")  # counts over the corpus: nothing random enters
    outcome, reason = single_run(False, 1)
    assert outcome == INCONCLUSIVE and "point to 'did not hold'" in reason
    claim = Claim("GANs help", "abstract", True, "0.86 > 0.79")
    assert claim.outcome == INCONCLUSIVE and claim.seeds == 1
    with pytest.raises(ValueError, match="not one of"):
        Claim("x", "s", True, "e", outcome="mostly held")


def test_a_decided_claim_keeps_its_rule_interval_and_gates():
    rule = Rule("FID of the GAN minus the DDPM's", "better", tolerance=2.0)
    claim = Claim.decided("The DDPM's FID is lower", "Table 2", rule, paired([40.0, 42.0, 41.0], [30.0, 31.0, 30.5]),
                          "FID 41.0 vs 30.5")
    doc = claim.as_dict()
    assert doc["outcome"] == HELD and doc["held"] is True and doc["seeds"] == 3
    assert doc["estimate"]["method"] == "paired t" and doc["estimate"]["low"] > 2.0
    assert doc["rule"].startswith("FID of the GAN minus the DDPM's: held if its 95% interval lies above 0")
    with pytest.raises(ValueError, match="tolerance"):
        Rule("q", "better", -1.0)
    with pytest.raises(ValueError, match="kind"):
        Rule("q", "roughly")


def test_the_paired_bootstrap_holds_the_spread_of_seeds_and_of_test_items():
    rng = np.random.default_rng(0)
    a = 30 + rng.normal(0, 1, (3, 200))  # (seeds, test patches)
    steady = paired_bootstrap(a + 0.5, a, np.random.default_rng(1))
    assert steady.mean == pytest.approx(0.5) and steady.low == pytest.approx(0.5) and steady.n == 3
    noisy = paired_bootstrap(a + 0.5 + rng.normal(0, 1, a.shape), a, np.random.default_rng(1))
    assert noisy.low < 0.5 < noisy.high and noisy.high - noisy.low < 0.5  # 600 paired differences of sd 1
    seeds_apart = a + np.array([[-0.5], [0.5], [1.5]])  # the seeds disagree: the interval must say so
    assert paired_bootstrap(seeds_apart, a, np.random.default_rng(1)).low < 0 < 1.4 < paired_bootstrap(
        seeds_apart, a, np.random.default_rng(1)).high
    assert not paired_bootstrap(a[:1], a[:1], rng).complete  # one seed: no interval
    with pytest.raises(ValueError, match="one shape"):
        paired_bootstrap(a, a[:, :10], rng)


def test_per_seed_tables_average_leaf_by_leaf():
    first = {"psnr": 30.0, "peak": None, "name": "r=4", "nested": {"ssim": 0.8}}
    second = {"psnr": 32.0, "peak": 5.0, "name": "r=4", "nested": {"ssim": 0.9}}
    assert mean_of_trees([first, second]) == {"psnr": 31.0, "peak": None, "name": "r=4",
                                              "nested": {"ssim": pytest.approx(0.85)}}
