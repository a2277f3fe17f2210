"""The reader study library: scores against hand counts, reading order, study files, answers on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from reproductions.common import reader_study as rs

CLASSES = ["benign", "malignant"]


def make_study(folder, n_real=3, n_generated=3, seed=0, **kw):
    rng = np.random.default_rng(seed)
    items = [(rng.random((16, 16)), "real", CLASSES[i % 2]) for i in range(n_real)]
    items += [{"image": rng.random((16, 16)), "source": "generated", "label": CLASSES[i % 2]}
              for i in range(n_generated)]
    rs.write_study(folder, "Test study", "phantom", "phantom nodules", CLASSES, items, **kw)
    return rs.load_study(folder)


@pytest.fixture
def study(tmp_path):
    return make_study(tmp_path / "study")


# --- scores --------------------------------------------------------------------------------------------

TRUTH = {"r1": "real", "r2": "real", "r3": "real", "r4": "real",
         "g1": "generated", "g2": "generated", "g3": "generated", "g4": "generated"}


def test_score_matches_hand_counts():
    a = {"r1": True, "r2": True, "r3": True, "r4": False, "g1": True, "g2": False, "g3": False, "g4": False}
    b = {"r1": True, "r2": False, "r3": True, "r4": False, "g1": True, "g2": True, "g3": False, "g4": False}
    s = rs.score(TRUTH, {"A": a, "B": b})
    # A: 3 of 4 real judged real, 1 of 4 generated judged real; correct = 3 + 3 of 8
    assert s["readers"]["A"] == {"frr": 0.25, "trr": 0.75, "accuracy": 0.75, "n": 8,
                                 "generated_shown": 4, "real_shown": 4}
    # B: 2 of 4 real judged real, 2 of 4 generated judged real; correct = 2 + 2 of 8
    assert (s["readers"]["B"]["frr"], s["readers"]["B"]["trr"], s["readers"]["B"]["accuracy"]) == (0.5, 0.5, 0.5)
    # agreement on 6 of 8 items: po = 0.75; A says real 4/8, B says real 4/8: pe = 0.5; kappa = 0.25 / 0.5
    assert s["kappa"] == {"A vs B": pytest.approx(0.5)}
    assert s["mean_kappa"] == pytest.approx(0.5)


def test_kappa_uses_only_common_items_and_is_none_when_undefined():
    s = rs.score(TRUTH, {"A": {"r1": True, "g1": False, "g2": True}, "B": {"r1": True, "g1": True},
                         "C": {"g3": True}, "D": {"r1": True, "g1": True}})
    # A and B share r1, g1: A = [T, F], B = [T, T]; po = 0.5, pe = 0.5 * 1 + 0.5 * 0 = 0.5 -> 0
    assert s["kappa"]["A vs B"] == pytest.approx(0.0)
    assert s["kappa"]["A vs C"] is None  # no item in common
    assert s["kappa"]["B vs D"] is None  # both all "real": kappa is 0/0
    assert s["mean_kappa"] == pytest.approx(0.0)
    assert s["readers"]["C"] == {"frr": 1.0, "trr": None, "accuracy": 0.0, "n": 1,
                                 "generated_shown": 1, "real_shown": 0}


def test_score_ignores_items_outside_the_truth_and_rejects_a_bad_truth():
    s = rs.score(TRUTH, {"A": {"r1": True, "unknown": False}})
    assert s["readers"]["A"]["n"] == 1 and s["readers"]["A"]["frr"] is None
    assert rs.score(TRUTH, {})["mean_kappa"] is None
    with pytest.raises(rs.StudyError, match="truth"):
        rs.score({"x": "fake"}, {})


def test_score_labels():
    labels = {"a": "benign", "b": "malignant", "c": "benign", "d": "malignant"}
    s = rs.score_labels(labels, {"A": {"a": "benign", "b": "malignant", "c": "malignant", "d": "malignant",
                                       "x": "benign"},
                                 "B": {"a": "benign", "b": "benign", "c": "benign", "d": "malignant"}})
    assert s["readers"]["A"] == {"accuracy": 0.75, "n": 4}
    assert s["readers"]["B"] == {"accuracy": 0.75, "n": 4}
    # A = [b, m, m, m], B = [b, b, b, m]: po = 0.5; pe = 0.25 * 0.75 + 0.75 * 0.25 = 0.375 -> 0.125 / 0.625
    assert s["kappa"]["A vs B"] == pytest.approx(0.2)


# --- reading order ---------------------------------------------------------------------------------------


def test_reading_order_is_fixed_per_reader_and_differs_between_readers(tmp_path):
    study = make_study(tmp_path / "s", n_real=10, n_generated=10)
    ann = rs.reading_order(study, "Ann")
    assert sorted(ann) == sorted(study.ids)
    assert rs.reading_order(study, "Ann") == ann
    assert rs.reading_order(rs.load_study(study.folder), " Ann ") == ann  # reloaded, name stripped
    others = [rs.reading_order(study, name) for name in ("Bob", "ann", "Reader 1")]
    assert all(order != ann for order in others)


def test_next_item_resumes_at_the_first_unanswered(study):
    order = rs.reading_order(study, "Ann")
    assert rs.next_item(study, "Ann", []) == (0, order[0])
    assert rs.next_item(study, "Ann", [order[0], order[2], "not-in-study"]) == (2, order[1])
    assert rs.next_item(study, "Ann", order) == (len(order), None)


# --- the study folder ------------------------------------------------------------------------------------


def test_write_study_stores_opaque_ids_and_pngs(tmp_path):
    study = make_study(tmp_path / "s", n_real=4, n_generated=4)
    assert len(study.items) == 8 and study.data_kind == "phantom" and study.classes == tuple(CLASSES)
    for item in study.items:
        assert len(item.id) == 12 and int(item.id, 16) >= 0  # hex: says nothing about the source
        assert item.image == f"images/{item.id}.png" and (study.folder / item.image).is_file()
    from PIL import Image

    with Image.open(study.image_path(study.ids[0])) as image:
        assert image.size == (16, 16) and image.mode == "L"
    assert sorted(study.truth().values()) == ["generated"] * 4 + ["real"] * 4
    # the same images give the same ids; the stored order is a seeded shuffle, not the order given
    again = make_study(tmp_path / "t", n_real=4, n_generated=4)
    assert again.ids == study.ids
    given = [study.truth()[i] for i in study.ids]
    assert given != ["real"] * 4 + ["generated"] * 4


def test_write_study_accepts_uint8_rgb_and_channel_first(tmp_path):
    items = [(np.full((8, 8, 3), 200, np.uint8), "real", "benign"),
             (np.zeros((1, 8, 8), np.float32) - 1, "generated", None)]
    rs.write_study(tmp_path, "t", "real", "", CLASSES, items, value_range=(-1, 1))
    study = rs.load_study(tmp_path / "study.json")
    assert study.labels() == {i.id: "benign" for i in study.items if i.source == "real"}


@pytest.mark.parametrize("change, field", [
    (dict(data_kind="fake"), "data_kind"), (dict(classes=["benign"]), "classes"),
    (dict(items_with_arrays=[(np.zeros((4, 4)), "fake", "benign")]), "items[0].source"),
    (dict(items_with_arrays=[(np.zeros((4, 4)), "real", "cyst")]), "items[0].label"),
    (dict(items_with_arrays=[]), "empty"), (dict(study="../x"), "study"),
])
def test_write_study_refuses_bad_input_before_writing(tmp_path, change, field):
    args = dict(title="t", data_kind="phantom", note="", classes=CLASSES,
                items_with_arrays=[(np.zeros((4, 4)), "real", "benign")])
    with pytest.raises(rs.StudyError, match=field.replace("[", r"\[").replace("]", r"\]")):
        rs.write_study(tmp_path / "s", **{**args, **change})
    assert not (tmp_path / "s" / "study.json").exists()


def _edit(study, **changes):
    path = study.folder / "study.json"
    record = json.loads(path.read_text())
    for key, value in changes.items():
        if key.startswith("item0_"):
            record["items"][0][key[6:]] = value
        else:
            record[key] = value
    path.write_text(json.dumps(record))
    return path


@pytest.mark.parametrize("changes, message", [
    (dict(schema=2), "schema: expected 1"),
    (dict(data_kind="cartoon"), "data_kind: expected one of"),
    (dict(title=3), "title: expected a string"),
    (dict(items=[]), "items: expected a non-empty list"),
    (dict(item0_source="fake"), "items[0].source: expected 'real' or 'generated'"),
    (dict(item0_label="cyst"), "items[0].label"),
    (dict(item0_image="../../etc/passwd"), "items[0].image: expected a path inside"),
    (dict(item0_image="images/missing.png"), "items[0].image:"),
    (dict(item0_id="a/b"), "items[0].id"),
])
def test_load_study_names_the_file_and_the_field(study, changes, message):
    path = _edit(study, **changes)
    with pytest.raises(rs.StudyError) as err:
        rs.load_study(study.folder)
    assert str(path) in str(err.value) and message in str(err.value)


def test_load_study_on_a_duplicate_id_bad_json_and_a_missing_folder(study, tmp_path):
    record = json.loads((study.folder / "study.json").read_text())
    record["items"][1]["id"] = record["items"][0]["id"]
    (study.folder / "study.json").write_text(json.dumps(record))
    with pytest.raises(rs.StudyError, match=r"items\[1\]\.id: .* appears twice"):
        rs.load_study(study.folder)
    (study.folder / "study.json").write_text("{not json")
    with pytest.raises(rs.StudyError, match="not valid JSON"):
        rs.load_study(study.folder)
    with pytest.raises(rs.StudyError, match="no such file"):
        rs.load_study(tmp_path / "nowhere")


# --- readers and answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", "../evil", "a/b", ".hidden", "x" * 65, "Ann<script>", "tab\there"])
def test_a_bad_reader_name_is_refused_with_what_is_allowed(name):
    with pytest.raises(rs.StudyError, match="reader name"):
        rs.validate_reader(name)


def test_good_reader_names():
    assert rs.validate_reader("  Dr. Anna Müller-Smith_2 ") == "Dr. Anna Müller-Smith_2"


def test_the_answers_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(rs.ENV_ANSWERS, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert rs.answers_root() == tmp_path / "xdg" / "survey-explorer" / "reader-study"
    monkeypatch.setenv(rs.ENV_ANSWERS, str(tmp_path / "mine"))
    assert rs.answers_path("paper2", "Ann") == tmp_path / "mine" / "paper2" / "Ann.json"


def test_answers_are_saved_after_each_answer_and_reload(study, tmp_path):
    root = tmp_path / "answers"
    order = rs.reading_order(study, "Ann")
    path = rs.record_answer(study, "Ann", order[0], True, "benign", 2.5, root=root)
    assert path == root / study.name / "Ann.json"
    record = json.loads(path.read_text())
    assert record["reader"] == "Ann" and record["study"] == "paper2"
    assert record["answers"][0]["id"] == order[0] and record["answers"][0]["real"] is True
    assert record["answers"][0]["label"] == "benign" and record["answers"][0]["seconds"] == 2.5
    assert record["answers"][0]["at"].endswith("Z")
    rs.record_answer(study, "Ann", order[1], False, "malignant", 1.0, root=root)
    rs.record_answer(study, "Ann", order[0], False, "malignant", 3.0, root=root)  # replaces, not duplicates
    loaded = rs.load_answers(study, "Ann", root)
    assert set(loaded) == {order[0], order[1]} and loaded[order[0]]["real"] is False
    assert rs.next_item(study, "Ann", loaded) == (2, order[2])
    assert {p.name for p in path.parent.iterdir()} <= {"Ann.json", "Ann.json.lock"}  # no temporary left


def test_an_answer_that_cannot_be_written_leaves_the_file_as_it_was(study, tmp_path, monkeypatch):
    root = tmp_path / "answers"
    order = rs.reading_order(study, "Ann")
    path = rs.record_answer(study, "Ann", order[0], True, "benign", 1, root=root)
    before = path.read_bytes()

    def broken_replace(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("survey.storage.os.replace", broken_replace)
    with pytest.raises(rs.StorageError, match="unchanged"):
        rs.record_answer(study, "Ann", order[1], True, "benign", 1, root=root)
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_record_answer_refuses_what_is_not_in_the_study(study, tmp_path):
    with pytest.raises(rs.StudyError, match="not in study"):
        rs.record_answer(study, "Ann", "deadbeef", True, "benign", 1, root=tmp_path)
    with pytest.raises(rs.StudyError, match="label 'cyst'"):
        rs.record_answer(study, "Ann", study.ids[0], True, "cyst", 1, root=tmp_path)
    with pytest.raises(rs.StudyError, match="reader name"):
        rs.record_answer(study, "../x", study.ids[0], True, "benign", 1, root=tmp_path)


def answer_all(study, reader, root, judge=lambda item: item.source == "real", limit=None):
    for item_id in rs.reading_order(study, reader)[:limit]:
        item = study.item(item_id)
        rs.record_answer(study, reader, item_id, judge(item), item.label, 1.0, root=root)


def test_summary_scores_finished_readers_only_and_the_csv_hides_the_truth_until_all_finish(study, tmp_path):
    root = tmp_path / "answers"
    answer_all(study, "Ann", root)
    answer_all(study, "Bob", root, judge=lambda item: True)
    answer_all(study, "Cy", root, limit=2)
    (root / study.name / "broken.json").write_text("{")
    answers, problems = rs.collect(study, root)
    assert set(answers) == {"Ann", "Bob", "Cy"} and len(problems) == 1 and "broken.json" in problems[0]
    s = rs.summary(study, answers)
    assert s["finished"] == ["Ann", "Bob"] and s["readers"]["Cy"] == {"answered": 2, "finished": False}
    assert set(s["scores"]["readers"]) == {"Ann", "Bob"}
    assert s["scores"]["readers"]["Ann"] == {"frr": 0.0, "trr": 1.0, "accuracy": 1.0, "n": 6,
                                                  "generated_shown": 3, "real_shown": 3}
    assert s["scores"]["readers"]["Bob"]["frr"] == 1.0
    assert s["labels"]["readers"]["Ann"]["accuracy"] == 1.0
    assert list(s["scores"]["kappa"]) == ["Ann vs Bob"]
    partial = rs.answers_csv(study, answers)
    assert partial.splitlines()[0] == "study,reader,item,judged_real,label,seconds,at"
    assert len(partial.splitlines()) == 1 + 6 + 6 + 2 and "generated" not in partial
    answer_all(study, "Cy", root)
    full = rs.answers_csv(study, rs.collect(study, root)[0])
    assert full.splitlines()[0].endswith(",source,true_label") and len(full.splitlines()) == 19


# --- the explorer's view of it (no browser) -----------------------------------------------------------


def test_the_explorer_finds_studies_named_by_the_environment_and_shows_scores(study, tmp_path, monkeypatch):
    from app import reader_study_views as rv

    monkeypatch.setenv(rv.ENV_STUDIES, str(tmp_path / "nothing-here") + ":" + str(study.folder.parent))
    found = [f for f in rv.find_studies() if f.origin == "$SURVEY_READER_STUDIES"]
    assert [f.folder for f in found] == [study.folder] and found[0].study == study
    assert rv.find(found[0].key).folder == study.folder and rv.find("nope") is None
    root = tmp_path / "answers"
    answer_all(study, "Ann", root)
    answer_all(study, "Bob", root, limit=3)
    text = str(rv.results_view(study, *rs.collect(study, root)))
    assert "0.0% (0 of 3)" in text and "100.0% (3 of 3)" in text  # Ann's FRR and TRR
    assert "in progress" in text and "Cohen's kappa needs two readers" in text


# --- the CLI ---------------------------------------------------------------------------------------------


def test_the_cli_scores_and_exports(study, tmp_path):
    from reproductions.cli import main

    root = tmp_path / "answers"
    answer_all(study, "Ann", root)
    answer_all(study, "Bob", root, judge=lambda item: True)
    result = CliRunner().invoke(main, ["reader-study", "score", str(study.folder), "--answers", str(root)])
    assert result.exit_code == 0, result.output
    assert "Ann: FRR 0.0%  TRR 100.0%  accuracy 100.0%" in result.output
    assert "kappa Ann vs Bob: real/generated 0.000" in result.output
    result = CliRunner().invoke(main, ["reader-study", "score", str(study.folder), "--answers", str(root), "--json"])
    assert json.loads(result.output)["scores"]["readers"]["Bob"]["frr"] == 1.0
    out = tmp_path / "answers.csv"
    result = CliRunner().invoke(main, ["reader-study", "export", str(study.folder), "--answers", str(root),
                                       "--out", str(out)])
    assert result.exit_code == 0 and "12 answers" in result.output and out.read_text().count("\n") == 13
    bad = CliRunner().invoke(main, ["reader-study", "score", str(tmp_path)])
    assert bad.exit_code != 0 and "study.json" in bad.output
