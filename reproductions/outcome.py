"""What a reproduction hands back: its metrics, the side-by-side rows, the claims and the data used.

A paper module's ``run`` returns an ``Outcome``; ``sidebyside.write`` turns it into the Markdown
and JSON that the explorer shows. A paper number is a ``Reported`` with its source; one the paper
does not give is ``Reported.missing(...)`` and reads "not reported", never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    """A claim of the paper and whether it held in this run (None: not testable here)."""
    text: str
    source: str
    held: bool | None
    evidence: str


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
