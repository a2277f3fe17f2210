"""A reader study (visual Turing test) as in Chuquicusma et al. 2018: its folder, its answers, its scores.

Readers see a blinded, shuffled series of real and generated patches and answer two questions for each:
real or generated, and which class (benign or malignant). From their answers:

- FRR, the false recognition rate: generated patches judged real / generated patches shown;
- TRR, the true recognition rate: real patches judged real / real patches shown;
- accuracy: real and generated told apart correctly / patches answered;
- Cohen's kappa between every pair of readers, on the patches both answered
  (``sklearn.metrics.cohen_kappa_score``).

A study is a folder (a reproduction writes it into its run folder as ``reader_study/``)::

    study.json   {"schema": 1, "study": "paper2", "title": ..., "data_kind": "phantom" | "real" | ...,
                  "note": ..., "classes": ["benign", "malignant"],
                  "items": [{"id": ..., "image": "images/<id>.png", "source": "real" | "generated",
                             "label": "benign" | "malignant" | null}]}
    images/<id>.png

Ids are opaque (a hash of the image's PNG bytes), so neither a file name nor an id says where a
patch came from, and the same patch keeps its id in every run that makes it. The answers live apart
from the study, one JSON file per reader per study, in ``answers_root()/<study>/<reader>.json``
(default ``$XDG_DATA_HOME/survey-explorer/reader-study``, i.e. ``~/.local/share/...``; the whole root is
replaced by ``$SURVEY_READER_STUDY_DIR``)::

    {"reader": "Ann", "study": "paper2",
     "answers": [{"id": ..., "real": true, "label": "benign", "seconds": 3.2, "at": "2026-...Z"}]}

rewritten atomically after each answer, so a killed browser or server loses nothing.

Pure Python, NumPy, scikit-learn and Pillow: the explorer imports this module and has no torch.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reproductions.common.numbers import is_missing
from reproductions.outcome import DATA_KINDS
from survey.storage import StorageError, atomic_write, locked

SCHEMA = 1
STUDY_FILE = "study.json"
SOURCES = ("real", "generated")
ENV_ANSWERS = "SURVEY_READER_STUDY_DIR"
READER_MAX = 64
_READER_CHARS = re.compile(r"[\w .-]+")  # letters (any script), digits, _, space, - and .
_STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ITEM_ID = re.compile(r"[A-Za-z0-9_-]+")


class StudyError(ValueError):
    """A study folder or an answers file that cannot be used; the message names the file and the field."""


# --- the study folder -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    id: str
    image: str  # relative to the study folder
    source: str  # "real" or "generated"
    label: str | None  # one of the study's classes, or None where the class is not known


@dataclass(frozen=True)
class Study:
    folder: Path
    name: str  # the "study" field: names the answers folder
    title: str
    data_kind: str
    note: str
    classes: tuple[str, ...]
    items: tuple[Item, ...]

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def image_path(self, item_id: str) -> Path:
        return self.folder / self.item(item_id).image

    def truth(self) -> dict[str, str]:
        """Item id -> "real" | "generated" (for ``score``)."""
        return {item.id: item.source for item in self.items}

    def labels(self) -> dict[str, str]:
        """Item id -> class, for the items whose class is known (for ``score_labels``)."""
        return {item.id: item.label for item in self.items if item.label is not None}


def _png_bytes(array: np.ndarray, value_range: tuple[float, float]) -> bytes:
    """A 2-D (grey) or H x W x 3 (RGB) array as PNG bytes; uint8 as is, floats mapped from value_range."""
    from PIL import Image  # Pillow comes with matplotlib

    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = np.moveaxis(array, 0, -1)  # C x H x W, as torch tensors are laid out
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise StudyError(f"an image must be H x W or H x W x 3, got shape {array.shape}")
    if array.dtype != np.uint8:
        lo, hi = value_range
        if not hi > lo:
            raise StudyError(f"value_range {value_range}: the upper end must be above the lower one")
        array = np.clip((array.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0)
        array = np.round(array * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _item_parts(entry) -> tuple[np.ndarray, str, str | None]:
    if isinstance(entry, Mapping):
        return entry["image"], entry["source"], entry.get("label")
    array, source, *rest = entry
    return array, source, rest[0] if rest else None


def write_study(folder: Path, title: str, data_kind: str, note: str, classes: Iterable[str],
                items_with_arrays: Iterable, *, study: str = "paper2", seed: int = 0,
                value_range: tuple[float, float] = (0.0, 1.0)) -> Path:
    """Write a study into ``folder`` (PNGs first, study.json last, each atomically) and return study.json.

    ``items_with_arrays``: ``(array, source, label)`` tuples or ``{"image", "source", "label"}`` dicts;
    ``source`` is "real" or "generated", ``label`` one of ``classes`` or None. Arrays are uint8 or floats
    in ``value_range`` (clipped), H x W, H x W x 3 or C x H x W. Give real and generated patches the same
    size, dtype and range, or the PNGs themselves tell them apart. The items are stored in a seeded
    shuffle, so not even study.json lists them in the order they were made."""
    folder = Path(folder)
    classes = [str(c) for c in classes]
    header = {"schema": SCHEMA, "study": study, "title": title, "data_kind": data_kind, "note": note,
              "classes": classes}
    _check_header(header, "write_study")  # before any image is written
    images = folder / "images"
    items, seen = [], set()
    for n, entry in enumerate(items_with_arrays):
        array, source, label = _item_parts(entry)
        data = _png_bytes(array, value_range)
        item_id = hashlib.sha256(data).hexdigest()[:12]
        while item_id in seen:  # the same picture twice: still two items
            item_id = hashlib.sha256(f"{item_id}:{n}".encode()).hexdigest()[:12]
        seen.add(item_id)
        items.append({"id": item_id, "image": f"images/{item_id}.png", "source": source, "label": label})
        _check_item(items[-1], n, classes, f"items_with_arrays[{n}]")
        atomic_write(images / f"{item_id}.png", data, backup=False)
    if not items:
        raise StudyError("write_study: items_with_arrays is empty; a study needs at least one image")
    order = np.random.default_rng(seed).permutation(len(items))
    record = {**header, "items": [items[i] for i in order]}
    path = folder / STUDY_FILE
    atomic_write(path, (json.dumps(record, indent=1) + "\n").encode(), backup=False)
    load_study(folder)  # what was written must read back
    return path


def _check_header(record: dict, where: str) -> None:
    def fail(field: str, why: str):
        raise StudyError(f"{where}: {field}: {why}")

    if record.get("schema") != SCHEMA:
        fail("schema", f"expected {SCHEMA}, got {record.get('schema')!r}")
    study = record.get("study")
    if not isinstance(study, str) or not _STUDY_NAME.fullmatch(study):
        fail("study", f"expected a name of letters, digits, '_', '.' or '-' (such as 'paper2'), got {study!r}")
    for field in ("title", "note"):
        if not isinstance(record.get(field), str):
            fail(field, f"expected a string, got {record.get(field)!r}")
    if record.get("data_kind") not in DATA_KINDS:
        fail("data_kind", f"expected one of {', '.join(DATA_KINDS)}, got {record.get('data_kind')!r}")
    classes = record.get("classes")
    if (not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes)
            or len(set(classes)) != len(classes)):
        fail("classes", f"expected a list of at least two different names, got {classes!r}")


def _check_item(item, n: int, classes: list[str], where: str) -> None:
    def fail(field: str, why: str):
        raise StudyError(f"{where}: items[{n}].{field}: {why}")

    if not isinstance(item, dict):
        raise StudyError(f"{where}: items[{n}]: expected an object, got {item!r}")
    if not isinstance(item.get("id"), str) or not _ITEM_ID.fullmatch(item["id"]):
        fail("id", f"expected letters, digits, '_' or '-', got {item.get('id')!r}")
    image = item.get("image")
    if not isinstance(image, str) or not image or Path(image).is_absolute() or ".." in Path(image).parts:
        fail("image", f"expected a path inside the study folder, got {image!r}")
    if item.get("source") not in SOURCES:
        fail("source", f"expected 'real' or 'generated', got {item.get('source')!r}")
    if item.get("label") is not None and item.get("label") not in classes:
        fail("label", f"expected one of the classes {classes} or null, got {item.get('label')!r}")


def load_study(folder: Path) -> Study:
    """The study in ``folder`` (or the study.json given), validated; a StudyError names the file and field."""
    path = Path(folder)
    if path.name == STUDY_FILE and not path.is_dir():
        folder, path = path.parent, path
    else:
        folder, path = path, path / STUDY_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise StudyError(f"{path}: no such file (a study folder holds study.json and images/)") from err
    except (OSError, UnicodeDecodeError) as err:
        raise StudyError(f"{path}: unreadable ({err})") from err
    except ValueError as err:
        raise StudyError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(record, dict):
        raise StudyError(f"{path}: expected a JSON object")
    _check_header(record, str(path))
    items = record.get("items")
    if not isinstance(items, list) or not items:
        raise StudyError(f"{path}: items: expected a non-empty list")
    seen: set[str] = set()
    for n, item in enumerate(items):
        _check_item(item, n, record["classes"], str(path))
        if item["id"] in seen:
            raise StudyError(f"{path}: items[{n}].id: {item['id']!r} appears twice")
        seen.add(item["id"])
        if not (folder / item["image"]).is_file():
            raise StudyError(f"{path}: items[{n}].image: {folder / item['image']} does not exist")
    return Study(folder=folder, name=record["study"], title=record["title"], data_kind=record["data_kind"],
                 note=record["note"], classes=tuple(record["classes"]),
                 items=tuple(Item(i["id"], i["image"], i["source"], i.get("label")) for i in items))


# --- readers and their answers -----------------------------------------------------------------------


def validate_reader(name: str | None) -> str:
    """The reader's name, stripped; a StudyError says what is allowed when it is not a usable name."""
    text = (name or "").strip()
    if not text:
        raise StudyError("reader name: type a name (letters, digits, spaces, '-', '_' or '.')")
    if len(text) > READER_MAX:
        raise StudyError(f"reader name: at most {READER_MAX} characters, got {len(text)}")
    if not _READER_CHARS.fullmatch(text):
        bad = sorted({c for c in text if not _READER_CHARS.fullmatch(c)})
        raise StudyError(f"reader name {text!r}: only letters, digits, spaces, '-', '_' and '.' are allowed, "
                         f"not {' '.join(map(repr, bad))}")
    if text.startswith("."):
        raise StudyError(f"reader name {text!r}: may not start with '.'")
    return text


def answers_root() -> Path:
    """Where answers are kept: $SURVEY_READER_STUDY_DIR, else $XDG_DATA_HOME/survey-explorer/reader-study."""
    if os.environ.get(ENV_ANSWERS):
        return Path(os.environ[ENV_ANSWERS]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "survey-explorer" / "reader-study"


def answers_folder(study: Study | str, root: Path | None = None) -> Path:
    name = study.name if isinstance(study, Study) else study
    return Path(root or answers_root()) / name


def answers_path(study: Study | str, reader: str, root: Path | None = None) -> Path:
    return answers_folder(study, root) / f"{validate_reader(reader)}.json"


def _read_answers_file(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise StudyError(f"{path}: unreadable ({err})") from err
    if not isinstance(record, dict) or not isinstance(record.get("answers"), list) \
            or not isinstance(record.get("reader"), str):
        raise StudyError(f"{path}: expected {{'reader': ..., 'study': ..., 'answers': [...]}}")
    for n, answer in enumerate(record["answers"]):
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str) \
                or not isinstance(answer.get("real"), bool):
            raise StudyError(f"{path}: answers[{n}]: expected an object with 'id' (text) and 'real' (true/false)")
    return record


def load_answers(study: Study | str, reader: str, root: Path | None = None) -> dict[str, dict]:
    """Item id -> this reader's answer (``{"id", "real", "label", "seconds", "at"}``); {} before the first."""
    try:
        record = _read_answers_file(answers_path(study, reader, root))
    except FileNotFoundError:
        return {}
    return {answer["id"]: answer for answer in record["answers"]}


def record_answer(study: Study, reader: str, item_id: str, real: bool, label: str | None, seconds: float,
                  root: Path | None = None, at: dt.datetime | None = None) -> Path:
    """Add (or replace) one answer and rewrite the reader's file atomically; returns the file."""
    reader = validate_reader(reader)
    if item_id not in study.ids:
        raise StudyError(f"item {item_id!r} is not in study {study.name!r} ({study.folder})")
    if not isinstance(real, bool):
        raise StudyError(f"answer to {item_id}: real must be true or false, got {real!r}")
    if label is not None and label not in study.classes:
        raise StudyError(f"answer to {item_id}: label {label!r} is not one of {', '.join(study.classes)}")
    path = answers_path(study, reader, root)
    at = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    answer = {"id": item_id, "real": real, "label": label, "seconds": round(float(seconds), 3),
              "at": at.isoformat(timespec="seconds").replace("+00:00", "Z")}
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):  # two tabs of the same reader: the later write re-reads the earlier one
        try:
            kept = [a for a in _read_answers_file(path)["answers"] if a["id"] != item_id]
        except FileNotFoundError:
            kept = []
        record = {"reader": reader, "study": study.name, "answers": [*kept, answer]}
        atomic_write(path, (json.dumps(record, indent=1) + "\n").encode(), backup=False)
    return path


def collect(study: Study | str, root: Path | None = None) -> tuple[dict[str, dict[str, dict]], list[str]]:
    """Every reader's answers to ``study`` (reader -> item id -> answer), and the files that could not be read."""
    folder = answers_folder(study, root)
    readers, problems = {}, []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = _read_answers_file(path)
        except (FileNotFoundError, StudyError) as err:
            problems.append(str(err))
            continue
        readers[record["reader"]] = {answer["id"]: answer for answer in record["answers"]}
    return readers, problems


def reading_order(study: Study, reader: str) -> list[str]:
    """The item ids in the order ``reader`` sees them: shuffled by a seed from the study and the reader's
    name, so each reader has an order of their own and gets the same one back when they return."""
    digest = hashlib.sha256(f"{study.name}\0{validate_reader(reader)}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    ids = sorted(study.ids)
    return [ids[i] for i in rng.permutation(len(ids))]


def next_item(study: Study, reader: str, answered: Iterable[str]) -> tuple[int, str | None]:
    """(how many of the study's items ``reader`` has answered, the first unanswered one in their order or None)."""
    done = set(answered) & set(study.ids)
    for item_id in reading_order(study, reader):
        if item_id not in done:
            return len(done), item_id
    return len(done), None


# --- scores ------------------------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _kappa(a: list, b: list) -> float | None:
    if len(a) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both readers constant and equal: kappa is 0/0
        value = float(cohen_kappa_score(a, b))
    return None if is_missing(value) else value


def _pairwise(answers: Mapping[str, Mapping[str, object]], keep: set[str]) -> tuple[dict, float | None]:
    kappas = {}
    for a, b in itertools.combinations(sorted(answers), 2):
        common = sorted(set(answers[a]) & set(answers[b]) & keep)
        kappas[f"{a} vs {b}"] = _kappa([answers[a][i] for i in common], [answers[b][i] for i in common])
    defined = [k for k in kappas.values() if k is not None]
    return kappas, (float(np.mean(defined)) if defined else None)


def score(truth: Mapping[str, str], calls: Mapping[str, Mapping[str, bool]]) -> dict:
    """FRR, TRR and accuracy per reader and Cohen's kappa per pair of readers.

    ``truth``: item id -> "real" | "generated"; ``calls``: reader -> {item id: judged real}. Items that are
    not in ``truth`` are ignored. FRR = generated judged real / generated answered, TRR = real judged real /
    real answered, accuracy = correct real/generated calls / items answered (None where nothing counts).
    Kappa is on the items both readers answered, None with fewer than two or where it is undefined."""
    bad = {v for v in truth.values() if v not in SOURCES}
    if bad:
        raise StudyError(f"truth: expected 'real' or 'generated', got {sorted(map(repr, bad))}")
    readers = {}
    for name, answered in calls.items():
        seen = [(truth[i], bool(real)) for i, real in answered.items() if i in truth]
        generated = [real for source, real in seen if source == "generated"]
        real_ones = [real for source, real in seen if source == "real"]
        correct = sum(real_ones) + sum(not r for r in generated)
        readers[name] = {"frr": _ratio(sum(generated), len(generated)), "trr": _ratio(sum(real_ones), len(real_ones)),
                         "accuracy": _ratio(correct, len(seen)), "n": len(seen),
                         "generated_shown": len(generated), "real_shown": len(real_ones)}
    kappa, mean = _pairwise({r: {i: bool(v) for i, v in c.items()} for r, c in calls.items()}, set(truth))
    return {"readers": readers, "kappa": kappa, "mean_kappa": mean}


def score_labels(labels: Mapping[str, str], answers: Mapping[str, Mapping[str, str]]) -> dict:
    """Class (benign/malignant) accuracy per reader and Cohen's kappa per pair, on the items with a known
    class: ``labels`` item id -> class, ``answers`` reader -> {item id: class answered}."""
    readers = {}
    for name, answered in answers.items():
        seen = [(labels[i], a) for i, a in answered.items() if i in labels and a is not None]
        readers[name] = {"accuracy": _ratio(sum(t == a for t, a in seen), len(seen)), "n": len(seen)}
    clean = {r: {i: a for i, a in c.items() if a is not None} for r, c in answers.items()}
    kappa, mean = _pairwise(clean, set(labels))
    return {"readers": readers, "kappa": kappa, "mean_kappa": mean}


def summary(study: Study, answers: Mapping[str, Mapping[str, dict]]) -> dict:
    """What the results view shows: every reader's progress, and scores among those who answered every item
    (a reader still reading is listed with a count only, so no score hints at the truth of an item).

    Returns ``{"total", "readers": {name: {"answered", "finished"}}, "finished": [names], "scores": score(...),
    "labels": score_labels(...)}`` with both scores over the finished readers only."""
    ids = set(study.ids)
    progress = {name: {"answered": len(ids & set(given)), "finished": ids <= set(given)}
                for name, given in sorted(answers.items())}
    finished = [name for name, p in progress.items() if p["finished"]]
    calls = {name: {i: a["real"] for i, a in answers[name].items() if i in ids} for name in finished}
    chosen = {name: {i: a.get("label") for i, a in answers[name].items() if i in ids} for name in finished}
    return {"total": len(ids), "readers": progress, "finished": finished,
            "scores": score(study.truth(), calls), "labels": score_labels(study.labels(), chosen)}


def answers_csv(study: Study, answers: Mapping[str, Mapping[str, dict]]) -> str:
    """All answers as CSV, one row per reader and item. The truth (source, true label) is included only when
    every reader who has started has finished; otherwise those columns are left out."""
    ids = set(study.ids)
    with_truth = bool(answers) and all(ids <= set(given) for given in answers.values())
    out = io.StringIO()
    head = ["study", "reader", "item", "judged_real", "label", "seconds", "at"]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head + (["source", "true_label"] if with_truth else []))
    for reader in sorted(answers):
        for item_id, a in sorted(answers[reader].items(), key=lambda pair: str(pair[1].get("at", ""))):
            if item_id not in ids:
                continue
            row = [study.name, reader, item_id, a["real"], a.get("label") or "", a.get("seconds", ""), a.get("at", "")]
            if with_truth:
                item = study.item(item_id)
                row += [item.source, item.label or ""]
            writer.writerow(row)
    return out.getvalue()


__all__ = ["SCHEMA", "SOURCES", "DATA_KINDS", "ENV_ANSWERS", "StudyError", "StorageError", "Item", "Study",
           "write_study", "load_study", "validate_reader", "answers_root", "answers_folder", "answers_path",
           "load_answers", "record_answer", "collect", "reading_order", "next_item", "score", "score_labels",
           "summary", "answers_csv"]
