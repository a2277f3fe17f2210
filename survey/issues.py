"""Problems found in a corpus, each naming where it is so the user can go and fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Issue:
    severity: str  # "error" or "warning"
    code: str  # short machine-readable kind, e.g. "missing-field"
    file: str
    line: int | None
    key: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        what = " ".join(x for x in (
            f"[{self.key}]" if self.key else "", f"field '{self.field}':" if self.field else "") if x)
        return f"{where}: {self.severity}: {what + ' ' if what else ''}{self.message}"

    def to_dict(self) -> dict:
        record = asdict(self)
        record["line"] = None if self.line is None else int(self.line)  # numpy integers are not JSON
        return record


class UserError(ValueError):
    """Input that the user can fix (a bad option value, a file that cannot hold a character):
    commands show its message as one line; any other exception is a bug and keeps its traceback."""
