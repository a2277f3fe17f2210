"""The raw-JSON cache of OpenAlex work records, kept beside the corpus (``bib/openalex/``).

``works.json`` holds the work records exactly as OpenAlex sent them, keyed by OpenAlex id,
and ``lookups``: what each question asked of OpenAlex found (a DOI, a title, an id), so that a
second run asks nothing twice and everything works offline. During a run every answered
batch is written at once as its own ``batch-*.json`` (atomically), so an interrupted run
loses at most the batch in flight and the next run resumes; a finished run folds the batches
into ``works.json`` (atomically, previous version kept as ``works.json.bak``).
"""

from __future__ import annotations

import datetime
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from survey.storage import StorageError, atomic_write

FOLDER = "openalex"
MAIN = "works.json"
FORMAT = 1
NOTE = ("Raw OpenAlex work records fetched by `survey enrich` for this corpus (https://openalex.org, "
        "CC0). Generated: edit the .bib files, not this.")


def cache_folder(bib_file: Path) -> Path:
    """The cache of the corpus whose first .bib file is ``bib_file``: ``openalex/`` beside it."""
    return Path(bib_file).resolve().parent / FOLDER


def short_id(openalex_id: str) -> str:
    """``https://openalex.org/W123`` -> ``W123``."""
    return str(openalex_id).rsplit("/", 1)[-1]


def work_title(record: dict) -> str:
    """A raw OpenAlex record's title ("" when it has none): ``display_name``, else ``title``."""
    return record.get("display_name") or record.get("title") or ""


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass
class WorksCache:
    folder: Path
    works: dict[str, dict] = field(default_factory=dict)  # short OpenAlex id -> raw record
    lookups: dict[str, dict] = field(default_factory=dict)  # "doi:..", "title:..", "id:W.." -> answer
    pending: list[Path] = field(default_factory=list)  # batch files not yet folded into works.json

    @classmethod
    def open(cls, folder: Path) -> "WorksCache":
        """The cache in ``folder`` (empty if there is none), batches of an interrupted run included."""
        cache = cls(Path(folder))
        if cache.main.exists():
            cache._merge(_read(cache.main))
        if cache.folder.is_dir():
            cache.pending = sorted(cache.folder.glob("batch-*.json"))
            for path in cache.pending:
                cache._merge(_read(path))
        return cache

    @property
    def main(self) -> Path:
        return self.folder / MAIN

    def __len__(self) -> int:
        return len(self.works)

    def record(self, works: list[dict], lookups: dict[str, dict]) -> None:
        """Keep one answered batch: written to its own file before anything else happens."""
        data = {"format": FORMAT, "works": {short_id(w["id"]): w for w in works}, "lookups": lookups}
        path = self.folder / f"batch-{time.time_ns():020d}-{len(self.pending):05d}.json"
        atomic_write(path, _dump(data), backup=False)
        self.pending.append(path)
        self._merge(data)

    def compact(self) -> None:
        """Fold the batch files into ``works.json``; then remove them."""
        if not self.pending:
            return
        data = {"format": FORMAT, "note": NOTE, "written": now(),
                "works": dict(sorted(self.works.items())), "lookups": dict(sorted(self.lookups.items()))}
        atomic_write(self.main, _dump(data), backup=True)
        for path in self.pending:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:  # harmless: a leftover batch holds nothing works.json lacks
                raise StorageError(f"{path}: could not remove ({err.strerror}); it may be deleted by hand") from err
        self.pending = []

    def doi_index(self) -> dict[str, str]:
        """Normalised DOI -> short id, for every cached work that has a DOI."""
        from survey.records import normalise_doi
        return {normalise_doi(w["doi"]): i for i, w in self.works.items() if w.get("doi")}

    def _merge(self, data: dict) -> None:
        self.works.update(data["works"])
        self.lookups.update(data["lookups"])


def _dump(data: dict) -> bytes:
    # one work per line: diffs of a committed cache stay readable, and it loads as fast as compact JSON
    works = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False, separators=(',', ':'))}"
                       for k, v in data["works"].items())
    head = {k: v for k, v in data.items() if k not in ("works", "lookups")}
    lookups = json.dumps(data["lookups"], ensure_ascii=False, indent=1, sort_keys=True)
    text = json.dumps(head, ensure_ascii=False)[:-1] + (", " if head else "")
    text += f'"works": {{\n{works}\n}},\n"lookups": {lookups}}}\n'
    return text.encode("utf-8")


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable OpenAlex cache ({err}); restore {path.name}.bak if there is "
                         "one, or delete the file and run `survey enrich` again") from err
    if (not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("works"), dict)
            or not isinstance(data.get("lookups"), dict)):
        raise ValueError(f"{path}: not an OpenAlex cache of format {FORMAT} (expected 'works' and 'lookups' "
                         "objects); delete it and run `survey enrich` again")
    return data
