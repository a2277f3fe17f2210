"""The explorer's filter state: URL round trip, tag cycling, chips."""

from __future__ import annotations

from app.filters import FilterState


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
