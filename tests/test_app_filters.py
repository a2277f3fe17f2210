"""The explorer's filter state: URL round trip, tag cycling, chips."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from app.filters import MAX_LIST_FILTER, FilterState, list_filter_json
from app.interactions import next_state
from app.views import list_columns


def test_url_round_trip_keeps_every_part():
    state = FilterState.with_tags(text="lung ct", require=("method:DCGAN", "modality:?"), exclude=("type:tool",),
                        year_min=2018, year_max=2020, paper="Yi2019GANReview", colour="year", edges="coupling")
    url = state.to_url()
    assert url.startswith("?") and "tag=method%3ADCGAN" in url and "years=2018-2020" in url
    assert FilterState.from_url(url) == state
    assert FilterState().to_url() == ""


def test_a_bad_url_gives_a_usable_state():
    state = FilterState.from_url("?years=soon&colour=purple&edges=telepathy&tag=method:GAN")
    assert (state.year_min, state.year_max, state.colour, state.edges) == (None, None, "category", "tags")
    assert state.require == ("method:GAN",)


def test_the_lists_sort_and_filter_model_round_trip_and_odd_ones_are_left_out():
    model = {"title": {"filterType": "text", "type": "contains", "filter": "Müller & GAN"},
             "year": {"filterType": "number", "type": "inRange", "filter": 2018, "filterTo": 2020}}
    state = FilterState(list_sort=(("year", "desc"), ("title", "asc")), list_filter=list_filter_json(model))
    assert FilterState.from_url(state.to_url()) == state and state.list_filter_model == model
    odd = FilterState.from_url("?sort=year:sideways,key:asc,nope:desc,key:desc,::&listfilter=" +
                               quote('{"key": {"type": "contains"}, "password": {}, "year": 7}'))
    assert odd.list_sort == (("key", "asc"),) and odd.list_filter_model == {"key": {"type": "contains"}}
    assert FilterState.from_url("?listfilter=%7Bnot+json").list_filter == ""
    from_browser = FilterState(list_sort=(["year", "desc"], 7, [["title"], "asc"], ["key", None], "ab"))
    assert from_browser.list_sort == (("year", "desc"),)  # the grid's JSON pairs; anything else left out
    assert list_filter_json({"title": {"filter": "x" * MAX_LIST_FILTER}}) == ""  # too long for a URL: dropped
    assert list_filter_json([1, 2]) == list_filter_json(None) == ""
    columns = {c["field"]: c for c in list_columns(("year", "title"), state.list_sort)}
    assert (columns["year"]["sort"], columns["year"]["sortIndex"], columns["title"]["sortIndex"]) == ("desc", 0, 1)
    assert "sort" not in columns["key"]
    cleared = next_state(state, "ex-clear", 1, None, None)
    assert cleared.list_sort == state.list_sort and cleared.list_filter == ""  # the view stays, the filters go


@given(st.text(max_size=200))
def test_any_url_gives_a_state_whose_url_round_trips(search):
    state = FilterState.from_url(search)
    assert FilterState.from_url(state.to_url()) == state


def test_a_tag_click_requires_then_excludes_then_clears():
    state = FilterState()
    once = state.cycle_tag("method:GAN")
    twice = once.cycle_tag("method:GAN")
    assert once.require == ("method:GAN",) and twice.exclude == ("method:GAN",) and not twice.require
    assert twice.cycle_tag("method:GAN") == state


def test_chips_name_every_filter_and_remove_one_each():
    state = FilterState.with_tags(text="x", require=("a:b",), exclude=("c:d",), year_min=2019)
    chips = dict(state.chips())
    assert chips == {"q": "text: x", "tag=a:b": "a:b", "not=c:d": "not c:d", "years": "years: 2019–…"}
    assert state.without_chip("tag=a:b").require == ()
    assert state.without_chip("not=c:d").exclude == ()
    assert state.without_chip("years").year_min is None
    assert state.without_chip("q").text == ""
    assert state.query().year_min == 2019
