"""What the browser needs to filter on its own (app/assets/explorer-filter.js), built once per snapshot.

A click in a cloud, on a chip or in the histogram is answered in the page: the browser works out the
new state and which papers it keeps, and redraws the count, the histogram and the map's lit points
itself; the server draws the rest (clouds, chips, list) afterwards. What only Python can answer, the
full-text search and "select similar", comes from the server as the rows it keeps (``match``), and
a selector the index cannot resolve (a spelling of an author that no paper uses, a tag from a URL
that no paper has) leaves the whole drawing to the server. tests/test_browser_filter.py runs the
script in Node against ``FilterState``, ``Query`` and ``figures`` on the same states.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app import figures
from app.filters import SELECTION_COLOURS, FilterState
from survey.export import Tally
from survey.review import CATEGORY_COLOURS, OTHER_COLOUR

STACKS = (*CATEGORY_COLOURS, figures.NO_CATEGORY)  # the histogram's stacks when it is coloured by category


def index(table: pd.DataFrame, tags: Tally, authors: Tally, venues: Tally, version: str) -> dict:
    """The corpus as the browser filters it, row by row in the table's order: keys, years (None for
    none), the histogram stack of each row (its index in STACKS; -1: none), and for each selector kind
    the Tally's names and its (row, code) pairs."""
    categories = figures.category_column(table).to_numpy()
    stack = pd.Index(STACKS).get_indexer(categories)
    return {
        "version": version,
        "keys": table["key"].astype(str).tolist(),
        "years": [None if pd.isna(y) else int(y) for y in table["year"]],
        "stack": stack.tolist(),
        "stacks": [[name, CATEGORY_COLOURS.get(name, OTHER_COLOUR)] for name in STACKS],
        "kinds": {kind: {"names": list(tally.names), "rows": tally.rows.tolist(), "codes": tally.codes.tolist()}
                  for kind, tally in (("tag", tags), ("author", authors), ("venue", venues))},
        "colours": {"selection": list(SELECTION_COLOURS), "other": OTHER_COLOUR, "faded": figures.FADED,
                    "noSelection": figures.NO_SELECTION},
        "traces": {"nodes": figures.NODE_TRACES, "outside": "Works outside the corpus", "ring": "Selected"},
    }


def match(table: pd.DataFrame, state: FilterState, nearest) -> dict:
    """The rows that the state's search text and "select similar" keep (None: no such filter), which
    the browser cannot work out; ``nearest``: ``Snapshot.similar_to``."""
    query = FilterState(text=state.text, similar=state.similar).query(nearest)
    rows = None
    if query.text.strip() or query.keys is not None:
        rows = np.flatnonzero(query.mask(table).to_numpy(dtype=bool)).tolist()
    return {"text": state.text, "similar": state.similar or "", "rows": rows}

