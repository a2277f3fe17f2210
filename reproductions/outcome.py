"""What a reproduction hands back: its metrics, the side-by-side rows, the claims and the data used.

A paper module's ``run`` returns an ``Outcome``; ``sidebyside.write`` turns it into the Markdown
and JSON that the explorer shows. A paper number is a ``Reported`` with its source; one the paper
does not give is ``Reported.missing(...)`` and reads "not reported", never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reproductions.verdict import HELD, NOT_HELD, NOT_TESTABLE, OUTCOMES, Gate, Interval, Rule, decide, single_run

NOT_REPORTED = "not reported"
DATA_KINDS = ("real", "phantom", "synthetic", "substitute")


@dataclass(frozen=True)
class Reported:
    """One number from the paper, with where it was read."""
    value: float | None
    source: str

    @classmethod
    def missing(cls, source: str) -> Reported:
        return cls(None, source)

    @property
    def text(self) -> str:
        return NOT_REPORTED if self.value is None else f"{self.value:g}"


@dataclass(frozen=True)
class Row:
    """Ours beside the paper's for one metric in one setting (data set, method, task)."""
    metric: str
    setting: str
    ours: float | None
    paper: Reported
    higher_is_better: bool | None = True
    note: str = ""


@dataclass(frozen=True)
class Claim:
    """A claim of the paper (or, with ``addition``, a comparison of ours shown as context that never
    counts in the paper's verdict), its rule, the numbers and the outcome (one of verdict.OUTCOMES).

    ``Claim.decided`` decides on several seeds with an interval and a rule; a claim built directly
    carries a yes/no ``held`` from one run's numbers, which ``verdict.single_run`` turns into an
    outcome (inconclusive on fewer than 3 seeds; ``seeds`` None when nothing random enters)."""
    text: str
    source: str
    held: bool | None  # a one-run rule's yes/no (None: nothing to decide); decided claims: True / False / None
    # as the outcome is held / did not hold / anything else
    evidence: str
    seeds: int | None = 1
    gates: tuple[Gate, ...] = ()
    addition: bool = False
    rule: str = ""  # the rule as written before the run (Rule.text)
    estimate: Interval | None = None  # the decided quantity over the seeds
    outcome: str = ""  # derived from held, seeds and gates when not given
    reason: str = ""  # why it is inconclusive

    def __post_init__(self):
        if not self.outcome:
            outcome, reason = single_run(self.held, self.seeds, self.gates)
            object.__setattr__(self, "outcome", outcome)
            object.__setattr__(self, "reason", reason)
        elif self.outcome not in OUTCOMES:
            raise ValueError(f"claim outcome {self.outcome!r} is not one of {OUTCOMES}")

    @classmethod
    def decided(cls, text: str, source: str, rule: Rule, estimate: Interval, evidence: str,
                gates: tuple[Gate, ...] = (), addition: bool = False) -> Claim:
        outcome, reason = decide(rule, estimate, gates)
        return cls(text, source, {HELD: True, NOT_HELD: False}.get(outcome), evidence, seeds=estimate.n,
                   gates=tuple(gates), addition=addition, rule=rule.text, estimate=estimate, outcome=outcome,
                   reason=reason)

    @classmethod
    def untestable(cls, text: str, source: str, evidence: str, addition: bool = False) -> Claim:
        return cls(text, source, None, evidence, seeds=None, addition=addition, outcome=NOT_TESTABLE)

    def as_dict(self) -> dict:
        return {"text": self.text, "source": self.source, "outcome": self.outcome, "reason": self.reason,
                "held": self.held, "evidence": self.evidence, "rule": self.rule,
                "estimate": self.estimate.as_dict() if self.estimate else None, "seeds": self.seeds,
                "gates": [g.as_dict() for g in self.gates], "addition": self.addition}


@dataclass(frozen=True)
class DataNote:
    """A data set a run used; ``kind`` says whether it is real, a phantom or a substitute."""
    name: str
    kind: str
    detail: str

    def __post_init__(self):
        if self.kind not in DATA_KINDS:
            raise ValueError(f"data kind {self.kind!r} is not one of {DATA_KINDS}")


@dataclass
class Outcome:
    metrics: dict
    rows: list[Row] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    data: list[DataNote] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # paths relative to the run folder
    differences: list[str] = field(default_factory=list)  # how this run departs from the paper, and why
    reader_study: str | None = None  # folder in the run holding a blinded study for people (the explorer serves it)
