"""The search index and its query language (survey/search.py): the parser, each matching rule on a
small table, hostile and arbitrary input, highlighting, and the bundled corpus."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from survey import search
from survey.query import Query
from survey.search import (SearchIndex, SearchUnavailable, fold, highlight_ranges, highlight_spans, highlight_terms,
                           index_for, parse, to_match)
from tests.conftest import SEED_BIB, entry

PAPERS = [  # key, title, authors, venue, year, tags, free tags, abstract
    ("Muller2019Lesion", "GANs for lesion synthesis", ["Anna Müller", "Chen Li"], "Medical Image Analysis", 2019,
     {"method": ["GAN"], "modality": ["CT"]}, [], "We synthesise lesions."),
    ("Smith2018Organ", "An organ atlas that began in 2010", ["Ben Smith"], "Radiology", 2018,
     {"modality": ["MRI"]}, [], ""),
    ("Wang2020Liver", "U-Net segmentation of the liver", ["Chen Wang"], "IEEE Trans. Med. Imag.", 2020,
     {"method": ["U-Net"], "modality": ["CT angiography"]}, [], ""),
    ("Kim2021Brain", "A U Net for the brain", ["Dana Kim"], "NeuroImage", 2021,
     {"task": ["segmentation"]}, [], "Scene graph generation, as a side note."),
    ("Dvorak2017Plus", "UNet++ and GAN-based augmentation", ["José Dvořák"], "MICCAI", 2017,
     {"method": ["GAN"], "modality": ["X-ray"]}, ["survey"], ""),
    ("Ito2022Into", "Research into diffusion", ["Hana Ito"], "Medical Physics", 2022,
     {"method": ["DDPM"]}, [], ""),
    ("Ito2023Tomo", "Learning in tomography", ["Hana Ito"], "Medical Physics", 2023, {}, [], ""),
    ("Rossi2016Adv", "Adversarial training of detectors", ["Ivan Rossi"], "Pattern Recognition", 2016,
     {"method": ["GAN"]}, [], ""),
    ("Nan0000Undated", "Undated note on cycle-consistent models", [], "", None, {}, [], ""),
]


def small_table() -> pd.DataFrame:
    rows = []
    for key, title, authors, venue, year, tags, free, abstract in PAPERS:
        rows.append({"key": key, "title": title, "authors": authors, "venue": venue, "year": year,
                     "tags": tags, "free_tags": free, "abstract": abstract,
                     "tagset": frozenset([f"{c}:{v}" for c, vs in tags.items() for v in vs] + free)})
    table = pd.DataFrame(rows)
    table["year"] = table["year"].astype("Int64")
    return table


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex(small_table())


def found(index: SearchIndex, query: str) -> set[str]:
    return set(index.matching_keys(query))


# ----------------------------------------------------------------------------------------- the parser

def test_terms_are_anded_and_or_binds_closer():
    parsed = parse("lesion liver OR brain -atlas")
    assert [[t.parts for t in g] for g in parsed.groups] == [[("lesion",)], [("liver",), ("brain",)], [("atlas",)]]
    assert [t.negated for t in parsed.terms()] == [False, False, False, True]
    assert parse("a | b").groups == parse("a OR b").groups and len(parse("a AND b").groups) == 2
    assert parse("NOT atlas").terms()[0].negated


def test_phrases_fields_and_years_parse():
    phrase = parse('"Scene Graphs"').terms()[0]
    assert phrase.parts == ("scene", "graphs") and phrase.exact
    assert not parse('"scene graph"*').terms()[0].exact  # a star after the quote: the last word at its start
    author = parse('-author:"van der Berg"').terms()[0]
    assert (author.field, author.parts, author.negated) == ("authors", ("van", "der", "berg"), True)
    assert parse("tag:modality:CT").terms()[0] == search.Term(("modality", "ct"), "tags")
    assert parse("year:2019").terms()[0].years == (2019, 2019)
    assert parse("year:2018-2020").terms()[0].years == (2018, 2020)
    assert parse("year:2020-2018").terms()[0].years == (2018, 2020)
    assert parse("year:2020-").terms()[0].years == (2020, 9999)
    assert parse("year:-2000").terms()[0].years == (0, 2000)
    assert parse("year:2018..2020").terms()[0].years == (2018, 2020)


def test_what_the_language_cannot_read_is_plain_words():
    assert parse("year:soon").terms()[0] == search.Term(("year", "soon"))  # not a year: the words
    assert parse("modality:CT").terms()[0] == search.Term(("modality", "ct"))  # no such field
    assert parse('"unbalanced gan').terms() == [search.Term(("unbalanced",)), search.Term(("gan",))]
    assert parse("OR").terms() == [search.Term(("or",))]  # only operators: they are the words
    assert [t.parts for t in parse("gan OR").terms()] == [("gan",)]  # a dangling OR joins nothing
    assert parse("author:").groups == () and parse("* ) - --").groups == ()
    assert to_match("") is None and to_match("   ") is None


def test_user_text_is_always_quoted():
    expression = to_match('NEAR(a b) AND x* ) {title}: "c')
    for raw in ("NEAR(", "{title}", "x*"):
        assert raw not in expression
    assert '"near a"*' in expression and '"x"*' in expression


def test_fold_removes_accents_and_case():
    assert fold("Müller") == fold("MULLER") == "muller"
    assert fold("ﬁne Straße İ") == "fine strasse i"
    assert fold("Dvořák") == "dvorak"


@settings(deadline=None)
@given(st.integers(0, 9999), st.integers(0, 9999))
def test_year_prefixes_cover_the_range_exactly(low, high):
    low, high = min(low, high), max(low, high)
    prefixes = search._year_prefixes(low, high)
    assert len(prefixes) <= 72
    covered = [range(int(p.ljust(4, "0")), int(p.ljust(4, "9")) + 1) for p in prefixes]  # each prefix's years
    assert sorted(y for r in covered for y in r) == list(range(low, high + 1))  # all of them, each once


# ---------------------------------------------------------------------------------- matching, rule by rule

def test_words_match_at_word_starts(index):
    assert found(index, "gan") == {"Muller2019Lesion", "Dvorak2017Plus", "Rossi2016Adv"}  # GANs, GAN-based, a tag
    assert found(index, "organ") == {"Smith2018Organ"} and found(index, "began") == {"Smith2018Organ"}
    assert found(index, "segment") == {"Wang2020Liver", "Kim2021Brain"}


def test_accents_and_case_are_folded(index):
    for query in ("Muller", "muller", "MÜLLER", "müller", "Mull"):
        assert found(index, query) == {"Muller2019Lesion"}, query
    assert found(index, "jose dvorak") == found(index, "JOSÉ Dvořák") == {"Dvorak2017Plus"}


def test_hyphens_and_spaces_are_equal_and_may_be_left_out(index):
    for query in ("unet", "u-net", "UNet", "U-Net", '"u net"', "u‐net"):
        assert found(index, query) == {"Wang2020Liver", "Kim2021Brain", "Dvorak2017Plus"}, query
    assert found(index, "ganbased") == found(index, "gan-based") == {"Dvorak2017Plus"}
    assert found(index, "cycleconsistent") == {"Nan0000Undated"}
    assert found(index, "xray") == {"Dvorak2017Plus"}
    # a space join must match whole: "into" is not "in tomography"
    assert found(index, "into") == {"Ito2022Into"}


def test_phrases(index):
    assert found(index, '"lesion synthesis"') == {"Muller2019Lesion"}
    assert found(index, '"synthesis lesion"') == set()
    assert found(index, '"scene graph"') == {"Kim2021Brain"}  # in the abstract
    assert found(index, 'title:"gan"') == {"Dvorak2017Plus"}  # quoted: the whole word, not GANs
    assert found(index, 'title:"gan"*') == {"Muller2019Lesion", "Dvorak2017Plus"}
    # one quoted word is whole: a hyphenated compound's join, but not two words' join nor a longer word
    assert found(index, '"unet"') == {"Wang2020Liver", "Dvorak2017Plus"}


def test_or_and_not(index):
    assert found(index, "lesion OR liver") == {"Muller2019Lesion", "Wang2020Liver"}
    assert found(index, "gan -augmentation") == {"Muller2019Lesion", "Rossi2016Adv"}
    assert found(index, "gan NOT augmentation") == found(index, "gan -augmentation")
    everyone = {p[0] for p in PAPERS}
    assert found(index, "-gan") == everyone - found(index, "gan")
    assert found(index, "liver OR -gan") == everyone - {"Muller2019Lesion", "Dvorak2017Plus", "Rossi2016Adv"}
    assert found(index, "-gan -unet") == everyone - found(index, "gan OR unet")


def test_field_prefixes(index):
    assert found(index, "author:muller") == {"Muller2019Lesion"}
    assert found(index, "title:muller") == set()
    assert found(index, 'author:"muller chen"') == set()  # a phrase does not run across two authors
    assert found(index, "author:chen") == {"Muller2019Lesion", "Wang2020Liver"}
    assert found(index, "title:gan") == {"Muller2019Lesion", "Dvorak2017Plus"}  # not the tag-only paper
    assert found(index, "venue:miccai") == {"Dvorak2017Plus"}
    assert found(index, 'venue:"medical physics"') == {"Ito2022Into", "Ito2023Tomo"}
    assert found(index, "venue:med") == {"Muller2019Lesion", "Wang2020Liver", "Ito2022Into", "Ito2023Tomo"}
    assert found(index, "key:ito2022") == {"Ito2022Into"} and found(index, "key:Ito") == {"Ito2022Into", "Ito2023Tomo"}
    assert found(index, "abstract:lesions") == {"Muller2019Lesion"}
    assert found(index, "-author:ito venue:medical") == {"Muller2019Lesion"}


def test_tag_prefix_matches_category_value_and_value(index):
    ct = {"Muller2019Lesion", "Wang2020Liver"}  # modality:CT, modality:CT angiography
    assert found(index, "tag:CT") == found(index, "tag:modality:CT") == ct
    assert found(index, 'tag:"modality:CT"') == ct
    assert found(index, "tag:method:gan") == {"Muller2019Lesion", "Dvorak2017Plus", "Rossi2016Adv"}
    assert found(index, "tag:survey") == {"Dvorak2017Plus"}  # a free tag
    assert found(index, "tag:xray") == found(index, "tag:x-ray") == {"Dvorak2017Plus"}
    assert found(index, "tag:lesion") == set()


def test_years_and_year_ranges(index):
    assert found(index, "year:2019") == {"Muller2019Lesion"}
    assert found(index, "year:2018-2020") == {"Muller2019Lesion", "Smith2018Organ", "Wang2020Liver"}
    assert found(index, "year:2022-") == {"Ito2022Into", "Ito2023Tomo"}
    assert found(index, "year:-2016") == {"Rossi2016Adv"}
    assert found(index, "year:0-9999") == {p[0] for p in PAPERS} - {"Nan0000Undated"}  # no year: in no range
    assert found(index, "-year:2000-2100") == {"Nan0000Undated"}
    assert found(index, "gan year:2017-2019") == {"Muller2019Lesion", "Dvorak2017Plus"}
    assert found(index, "2010") == {"Smith2018Organ"}  # a number in free text: in the title


HOSTILE = ['"', "*", "NEAR(", "NEAR(a b, 3)", "AND", ")", "(", '"unbalanced', 'a "b', "OR OR", "a OR OR b", "-",
           "---x", "title:", "year:", "year:abc", "year:-", "year:1-2-3", "{title}:x", "title:{x}", "a:b:c", "^x",
           "NOT", "NOT NOT", '"a" * "b"', "x:", ":", '""', '"""', "\x00", "col*:", "a AND OR NOT b", "| | |",
           "&&", "-(a OR b)", "'", "''", "\\", "%", "_", "tag:?", "tag:modality:?", "author:-", "\u200b", "ǅ",
           "\ue000 gan", "year:99999", "key:\"", "title:\"unclosed", "-\"", "OR gan", "gan OR", "x" * 5000,
           " ".join(["gan"] * 500), " OR ".join(["a"] * 300), "(" * 300 + "gan" + ")" * 300]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_input_never_raises(index, query):
    expression = to_match(query)
    if expression is not None:
        index.execute(expression)  # the parser's output is valid FTS5 itself: no fallback needed
    assert index.match(query).shape == (len(PAPERS),)


def test_a_query_of_only_punctuation_matches_everything(index):
    assert index.match("* ) ( -").all()


# ----------------------------------------------------------------------------------------- highlighting

def test_highlight_terms_are_the_positive_words_for_the_field():
    assert highlight_terms('GAN -organ title:"U-Net" author:muller year:2019 Müller') == ["gan", "u net", "muller"]
    assert highlight_terms("author:muller gan", field="author") == ["muller", "gan"]


def test_highlight_spans_mark_what_matches():
    spans = highlight_spans("U-Net and U Net and UNets for GANs, an organ", "unet gan")
    assert [text for text, hit in spans if hit] == ["U-Net", "U Net", "UNets", "GANs"]
    assert "".join(text for text, _ in spans) == "U-Net and U Net and UNets for GANs, an organ"
    assert [t for t, hit in highlight_spans("Müller's scene graphs", '"scene graph"* muller') if hit] == [
        "Müller", "scene graphs"]
    assert not any(hit for _, hit in highlight_spans("GANs for lesions", '"gan" -lesion author:gan'))
    assert [t for t, hit in highlight_spans("A UNet and a U-Net-based model", "u-net") if hit] == ["UNet", "U-Net"]
    assert [t for t, hit in highlight_spans("U-Net, U Net, UNets, UNet", '"unet"') if hit] == ["U-Net", "UNet"]
    assert highlight_spans("", "gan") == [] and highlight_spans("GANs", "") == [("GANs", False)]


@pytest.mark.parametrize("query", ["unet gan", '"scene graph"* muller', "u-net", '"unet"', "organ OR began",
                                   "title:gans -lesion", "an", "scene graphs for", ""])
def test_highlight_ranges_are_the_marked_pieces_of_many_texts(query):
    texts = [paper[1] for paper in PAPERS] + ["U-Net and U Net and UNets for GANs, an organ", "Müller's scene graphs",
             "A UNet and a U-Net-based model", "", None]
    for text, ranges in zip(texts, highlight_ranges(texts, query)):
        pieces, at = [], 0
        for piece, hit in highlight_spans(text, query) if text else []:
            if hit:
                pieces.append((at, at + len(piece)))
            at += len(piece)
        assert ranges == pieces, (text, query)


# ------------------------------------------------------------------------------------ arbitrary input

SEARCH = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)


@SEARCH
@given(query=TEXT)
def test_arbitrary_text_never_raises(index, query):
    expression = to_match(parse(query, index._word_char))
    if expression is not None:
        index.execute(expression)
    assert index.match(query).shape == (len(PAPERS),)
    spans = highlight_spans("U-Net GANs in Müller's scene", query)
    assert "".join(t for t, _ in spans) == "U-Net GANs in Müller's scene"
    highlight_terms(query)


_OPERATORS = {"OR", "|", "AND", "&&", "&", "NOT"}


def own_words(title: str) -> list[str]:
    """The title's words as a user would type them: each run between spaces, less those the language
    reads otherwise (operators, a leading minus, quotes, another field's prefix)."""
    words = []
    for chunk in title.split():
        prefix = search._FIELD_PREFIX.match(chunk)
        if (chunk in _OPERATORS or '"' in chunk or (chunk.startswith("-") and len(chunk) > 1)
                or (prefix and search.FIELD_NAMES.get(prefix.group(1).lower(), "title") != "title")):
            continue
        words.append(chunk)
    return words


@SEARCH
@given(title=TEXT.filter(lambda t: t.strip()), quote=st.booleans(), other=TEXT)
def test_a_query_of_a_titles_own_words_finds_it(title, quote, other):
    table = small_table()
    table = pd.concat([table, pd.DataFrame([{"key": "Target", "title": title, "authors": [], "venue": "",
                                             "tags": {}, "free_tags": [], "abstract": "", "tagset": frozenset()},
                                            {"key": "Other", "title": other, "authors": [], "venue": "",
                                             "tags": {}, "free_tags": [], "abstract": "", "tagset": frozenset()}])],
                      ignore_index=True)
    words = own_words(title)
    query = " ".join(f'"{w}"' if quote else w for w in words)
    note(f"query: {query!r}")
    assert "Target" in SearchIndex(table).matching_keys(query)


# ------------------------------------------------------------------------------- the corpus and the CLI

def test_bundled_corpus(tmp_path):
    from survey.corpus import load_corpus

    table = load_corpus([SEED_BIB.parent]).table
    index = SearchIndex(table)
    keys = set(table["key"])
    gan = set(index.matching_keys("gan"))
    assert {"Yi2019GANReview", "Kazeminia2020GANs", "FridAdar2018Synthetic"} <= gan and "Beck2016SurVis" not in gan
    # M{\aa}ns Larsson: the LaTeX accent is decoded in the table, folded in the index
    assert index.matching_keys('author:"mans larsson"') == ["UsmanAkbar2024BrainTumor"]
    assert set(index.matching_keys("unet")) >= {"UsmanAkbar2024BrainTumor"}  # method:U-Net
    with_ct = {k for k, tags in zip(table["key"], table["tagset"]) if "modality:CT" in tags}
    assert set(index.matching_keys("tag:modality:CT")) == with_ct
    in_range = set(table[table["year"].between(2018, 2020).fillna(False).astype(bool)]["key"])
    assert set(index.matching_keys("year:2018-2020")) == in_range
    assert set(index.matching_keys("-year:2018-2020")) == keys - in_range
    for tag in set().union(*table["tagset"]):  # a quoted tag finds at least every paper that has it
        having = {k for k, tags in zip(table["key"], table["tagset"]) if tag in tags}
        assert having <= set(index.matching_keys(f'tag:"{tag}"')), tag


def test_query_masks_go_through_one_index_per_table(tmp_path):
    (tmp_path / "a.bib").write_text(entry("Mul2020", r"GAN-based synthesis by M{\"u}ller", author=r"{M{\"u}ller, Anna}")
                                    + entry("Org2021", "An organ atlas"), encoding="utf-8")
    from survey.corpus import load_corpus

    table = load_corpus([tmp_path / "a.bib"], use_cache=False).table
    assert table.loc[table["key"] == "Mul2020", "authors"].iloc[0] == ["Anna Müller"]
    assert index_for(table) is index_for(table)
    mask = Query(text="muller gan").mask(table)
    assert mask.index.equals(table.index) and table[mask]["key"].tolist() == ["Mul2020"]
    assert Query(text="gan").apply(table)["key"].tolist() == ["Mul2020"]  # not "organ"
    assert Query(text="  ").mask(table).all()


def test_the_snapshot_keeps_its_index(seed_copy):
    from app.filters import FilterState
    from app.interactions import render
    from app.state import ExplorerState

    snap = ExplorerState([seed_copy]).snapshot()
    page = render(snap, FilterState(text='"scene graphs"'))
    assert page["count"].startswith("1 of ")
    built = index_for(snap.table)  # the one the render's search built, kept with the snapshot's table
    render(snap, FilterState(text="gan"))
    assert index_for(snap.table) is built


def test_without_fts5_the_index_says_so(monkeypatch):
    def no_fts5(*args, **kwargs):
        connection = sqlite3.Connection(":memory:")

        class Connection:
            def execute(self, sql, *rest):
                if "fts5" in sql:
                    raise sqlite3.OperationalError("no such module: fts5")
                return connection.execute(sql, *rest)

            def close(self):
                connection.close()
        return Connection()

    monkeypatch.setattr(search.sqlite3, "connect", no_fts5)
    with pytest.raises(SearchUnavailable, match="FTS5"):
        SearchIndex(small_table())
