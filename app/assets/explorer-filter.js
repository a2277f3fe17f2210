// The explorer's filter in the browser: a click in a cloud, on a chip's operator or cross, in the
// histogram, or on "Clear filters" becomes a new URL here, and the count, the histogram and the map's lit
// points are redrawn here from the index the server sends once per corpus snapshot
// (app/browser_filter.py); the server then draws the clouds, the chips and the list for that URL.
// The state follows app/filters.py (FilterState.from_url, to_url and its transitions), the papers kept
// survey/query.py (Query.mask) and the histogram app/figures.py (years_figure); tests/test_browser_filter.py
// runs this file in Node against them. What only the server can answer (the full-text search, "select
// similar") arrives as the rows it keeps (``match``); a selector the index cannot resolve leaves the
// drawing to the server, as does anything this file does not parse as Python does.
(function (root) {
    'use strict';
    const KINDS = ['tag', 'author', 'venue'];
    const OPS = ['and', 'or', 'not'];
    const NEXT_OP = {and: 'or', or: 'not', not: 'and'};
    const COLOUR_MODES = ['category', 'year', 'cluster', 'selection'];
    const COLOURED = 6;  // selections with a colour (SELECTION_COLOURS)
    // after the filter's parameters, in to_url's order; kept as they came (the server checks them)
    const TAIL = ['paper', 'colour', 'edges', 'size', 'cols', 'sort', 'listfilter'];
    const PARAM = {}, SELECTOR_OF = {}, RANK = {};  // (op, kind) <-> URL parameter, and the formula's order
    OPS.forEach(function (op) {
        KINDS.forEach(function (kind) {
            const name = kind === 'tag' ? {and: 'tag', or: 'or', not: 'not'}[op]
                : {and: kind, or: 'or-' + kind, not: 'not-' + kind}[op];
            PARAM[op + ' ' + kind] = name;
            SELECTOR_OF[name] = [op, kind];
            RANK[op + ' ' + kind] = Object.keys(RANK).length;
        });
    });

    // ------------------------------------------------------------------ the URL, as Python's urllib reads it
    function unquote(text) {  // unquote_plus: '+' is a space, %XX a byte, invalid UTF-8 a replacement character
        const bytes = [];
        const plain = new TextEncoder();
        for (let i = 0; i < text.length; i++) {
            const c = text[i];
            if (c === '%' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
                bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
                i += 2;
            } else {
                plain.encode(c === '+' ? ' ' : c).forEach(function (b) { bytes.push(b); });
            }
        }
        return new TextDecoder('utf-8').decode(new Uint8Array(bytes));
    }

    function quote(text) {  // quote_plus: only letters, digits and _.-~ stay as they are
        return encodeURIComponent(text).replace(/[!'()*]/g, function (c) {
            return '%' + c.charCodeAt(0).toString(16).toUpperCase();
        }).replace(/%20/g, '+');
    }

    function parts(search) {  // [name, value, the part as written] of each name=value (a part without '=': none)
        return (search || '').replace(/^\?+/, '').split('&').map(function (part) {
            const at = part.indexOf('=');
            return at < 0 ? null : [unquote(part.slice(0, at)), unquote(part.slice(at + 1)), part];
        }).filter(function (p) { return p !== null; });
    }

    function integer(text) {  // Python's int() of ASCII text; undefined when Python might read it otherwise
        if (/[^\x20-\x7e]/.test(text)) { return undefined; }  // Python strips more kinds of space
        const m = /^[\s]*([+-]?\d+(?:_\d+)*)[\s]*$/.exec(text);
        return m ? Number(m[1].replace(/_/g, '')) : null;  // null: not a number
    }

    function parseYears(text) {  // parse_years: {low, high}; null when invalid; undefined when unsure
        const at = text.indexOf('-');
        if (at < 0) {
            const year = integer(text);
            return year === undefined ? undefined : year === null ? null : {low: year, high: year};
        }
        const bound = function (part) { return part.trim() ? integer(part) : false; };  // false: open
        const low = bound(text.slice(0, at)), high = bound(text.slice(at + 1));
        if (low === undefined || high === undefined) { return undefined; }
        if (low === null || high === null) { return null; }
        return {low: low === false ? null : low, high: high === false ? null : high};
    }

    function parseState(search) {
        const written = parts(search), all = written.filter(function (p) { return p[1] !== ''; });
        const first = {};
        all.forEach(function (p) { if (!(p[0] in first)) { first[p[0]] = p[1]; } });
        const seen = new Set(), selectors = [];
        all.forEach(function (p) {
            const pair = SELECTOR_OF[p[0]];
            const id = pair && pair[1] + '\u0000' + p[1];
            if (pair && !seen.has(id)) {
                seen.add(id);
                selectors.push({op: pair[0], kind: pair[1], value: p[1]});
            }
        });
        const years = 'years' in first ? parseYears(first.years) : null;
        const tail = TAIL.map(function (name) {  // cols may be blank (no column shown)
            return written.find(function (p) { return p[0] === name && (p[1] !== '' || name === 'cols'); });
        }).filter(Boolean);
        return {text: first.q || '', selectors: ordered(selectors), years: years || null,
                yearsRaw: years === undefined ? first.years : null, similar: first.similar || null,
                colour: COLOUR_MODES.indexOf(first.colour) >= 0 ? first.colour : 'category', tail: tail};
    }

    function toUrl(state) {
        const out = [];
        if (state.text) { out.push('q=' + quote(state.text)); }
        state.selectors.forEach(function (s) { out.push(PARAM[s.op + ' ' + s.kind] + '=' + quote(s.value)); });
        if (state.yearsRaw != null) {
            out.push('years=' + quote(state.yearsRaw));
        } else if (state.years && (state.years.low !== null || state.years.high !== null)) {
            out.push('years=' + quote((state.years.low || '') + '-' + (state.years.high || '')));
        }
        if (state.similar) { out.push('similar=' + quote(state.similar)); }
        state.tail.forEach(function (p) { out.push(p[2]); });
        return out.length ? '?' + out.join('&') : '';
    }

    // ------------------------------------------------------------------ the transitions of FilterState
    function ordered(selectors) {  // AND, OR, NOT; tags, authors, venues within each; as added within those
        const rank = function (s) { return RANK[s.op + ' ' + s.kind]; };
        return selectors.slice().sort(function (a, b) { return rank(a) - rank(b); });
    }

    function replace(state, changes) { return Object.assign({}, state, changes); }

    function without(state, selector) {
        return replace(state, {selectors: state.selectors.filter(function (s) { return s !== selector; })});
    }

    function findSelector(state, kind, value) {
        return state.selectors.find(function (s) { return s.kind === kind && s.value === value; });
    }

    function withOp(state, selector, op) {
        return replace(state, {selectors: ordered(state.selectors.map(function (s) {
            return s === selector ? {op: op, kind: s.kind, value: s.value} : s;
        }))});
    }

    function cycleSelector(state, kind, value) {  // not used -> AND -> NOT -> not used (OR -> NOT)
        const selector = findSelector(state, kind, value);
        if (!selector) {
            const added = {op: 'and', kind: kind, value: value};
            return replace(state, {selectors: ordered(state.selectors.concat([added]))});
        }
        if (selector.op === 'not') { return without(state, selector); }
        return withOp(state, selector, 'not');
    }

    function chipSelector(state, chip) {
        const at = chip.indexOf('=');
        const pair = SELECTOR_OF[at < 0 ? chip : chip.slice(0, at)], value = at < 0 ? '' : chip.slice(at + 1);
        return pair && state.selectors.find(function (s) {
            return s.op === pair[0] && s.kind === pair[1] && s.value === value;
        });
    }

    function nextOp(state, chip) {
        const selector = chipSelector(state, chip);
        return selector ? withOp(state, selector, NEXT_OP[selector.op]) : state;
    }

    function withoutChip(state, chip) {
        const name = chip.split('=')[0];
        const selector = chipSelector(state, chip);
        if (name === 'q') { return replace(state, {text: ''}); }
        if (selector) { return without(state, selector); }
        if (name === 'years') { return replace(state, {years: null, yearsRaw: null}); }
        if (name === 'similar') { return replace(state, {similar: null}); }
        return state;
    }

    function cleared(state) {  // "Clear filters": the map's settings, the columns and the list's sort stay
        const kept = ['colour', 'edges', 'size', 'cols', 'sort'];
        return {text: '', selectors: [], years: null, yearsRaw: null, similar: null, colour: state.colour,
                tail: state.tail.filter(function (p) { return kept.indexOf(p[0]) >= 0; })};
    }

    function yearRange(selected, clicked) {  // figures.year_range_from_selection
        if (selected && selected.range && selected.range.x) {
            const low = Math.ceil(selected.range.x[0] - 0.5), high = Math.floor(selected.range.x[1] + 0.5);
            return low <= high ? [low, high] : null;
        }
        if (selected && selected.points && selected.points.length) {
            const xs = selected.points.map(function (p) { return Math.trunc(p.x); });
            return [Math.min.apply(null, xs), Math.max.apply(null, xs)];
        }
        if (clicked && clicked.points && clicked.points.length) {
            const year = Math.trunc(clicked.points[0].x);
            return [year, year];
        }
        return null;
    }

    function next(state, trigger, value, yearsSelected, yearsClicked) {  // interactions.next_state, for these
        if (trigger && typeof trigger === 'object') {
            if (!value) { return state; }
            if (trigger.type === 'ex-tag') { return cycleSelector(state, 'tag', trigger.tag); }
            if (trigger.type === 'ex-selector') { return cycleSelector(state, trigger.kind, trigger.value); }
            if (trigger.type === 'ex-op') { return nextOp(state, trigger.chip); }
            if (trigger.type === 'ex-chip') { return withoutChip(state, trigger.chip); }
            return state;
        }
        if (trigger === 'ex-years') {
            const picked = yearRange(yearsSelected, yearsClicked);
            return picked ? replace(state, {years: {low: picked[0], high: picked[1]}, yearsRaw: null}) : state;
        }
        return trigger === 'ex-clear' ? cleared(state) : state;
    }

    // ------------------------------------------------------------------ the papers a state keeps
    let built = null;  // the index's lookups, made once per snapshot: key -> row, and per kind name -> rows

    function lookups(index) {
        if (built && built.index === index) { return built; }
        const kinds = {};
        Object.keys(index.kinds).forEach(function (kind) {
            const k = index.kinds[kind], code = new Map(), rows = k.names.map(function () { return []; });
            k.names.forEach(function (name, i) { code.set(name, i); });
            k.codes.forEach(function (c, i) { rows[c].push(k.rows[i]); });
            kinds[kind] = {code: code, rows: rows};
        });
        const row = new Map();
        index.keys.forEach(function (key, i) { row.set(key, i); });
        built = {index: index, kinds: kinds, row: row};
        return built;
    }

    function rowsOf(index, selector) {  // the rows carrying a selector; null when the index cannot say
        const kind = lookups(index).kinds[selector.kind];
        const code = kind ? kind.code.get(selector.value) : undefined;
        return code === undefined ? null : kind.rows[code];
    }

    function keeps(index, state, match) {  // per row 1 if the state keeps it (Query.mask); null: ask the server
        const n = index.keys.length, keep = new Uint8Array(n).fill(1);
        if (state.yearsRaw != null) { return null; }
        if (state.text || state.similar) {
            if (!match || match.text !== state.text || match.similar !== (state.similar || '')) { return null; }
            if (match.rows) {
                keep.fill(0);
                match.rows.forEach(function (r) { keep[r] = 1; });
            }
        }
        const either = new Uint8Array(n);
        let anyOr = false;
        for (const selector of state.selectors) {
            const rows = rowsOf(index, selector);
            if (rows === null) { return null; }
            if (selector.op === 'and') {
                const has = new Uint8Array(n);
                rows.forEach(function (r) { has[r] = 1; });
                for (let i = 0; i < n; i++) { keep[i] &= has[i]; }
            } else if (selector.op === 'not') {
                rows.forEach(function (r) { keep[r] = 0; });
            } else {
                anyOr = true;
                rows.forEach(function (r) { either[r] = 1; });
            }
        }
        if (anyOr) { for (let i = 0; i < n; i++) { keep[i] &= either[i]; } }
        const years = state.years;
        if (years && (years.low !== null || years.high !== null)) {
            const low = years.low !== null ? years.low : -Infinity, high = years.high !== null ? years.high : Infinity;
            index.years.forEach(function (y, i) { if (y === null || y < low || y > high) { keep[i] = 0; } });
        }
        return keep;
    }

    // The coloured selections: per row the first it carries (-1: none), and the numbers of all it carries
    // as the list's Sel. column shows them ("1 3"; undefined: none)
    function selections(index, state) {
        const coloured = state.selectors.filter(function (s) { return s.op !== 'not'; }).slice(0, COLOURED);
        const groups = new Int32Array(index.keys.length).fill(-1), numbers = new Array(index.keys.length);
        for (let i = coloured.length - 1; i >= 0; i--) {
            (rowsOf(index, coloured[i]) || []).forEach(function (r) {
                if (groups[r] === i) { return; }  // a paper that names an author twice
                groups[r] = i;
                numbers[r] = numbers[r] === undefined ? String(i + 1) : (i + 1) + ' ' + numbers[r];
            });
        }
        const names = coloured.map(function (s, i) {
            return (i + 1) + ' \u00b7 ' + (s.kind === 'tag' ? s.value : s.kind + ': ' + s.value);
        });
        return {groups: groups, numbers: numbers, names: names};
    }

    // ------------------------------------------------------------------ the views they are drawn in
    function escape(text) {  // html.escape
        return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
            .replace(/'/g, '&#x27;');
    }

    function bar(xs, counts, name, colour) {
        return {type: 'bar', x: xs, y: counts, name: name, marker: {color: colour},
                hovertemplate: '%{x}: %{y} paper(s)<extra>' + escape(name) + '</extra>'};
    }

    // The histogram's traces and shaded range (years_figure), on the layout it has; null without dated papers
    function yearsFigure(index, keep, state, selection, layout) {
        const years = index.years;
        const dated = years.filter(function (y) { return y !== null; });
        if (!dated.length) { return null; }
        const first = Math.min.apply(null, dated), last = Math.max.apply(null, dated);
        const xs = [];
        for (let y = first; y <= last; y++) { xs.push(y); }
        const colours = index.colours;
        const stacks = selection
            ? selection.names.map(function (name, i) { return [selection.groups, i, name, colours.selection[i]]; })
                .concat([[selection.groups, -1, colours.noSelection, colours.other]])
            : index.stacks.map(function (s, i) { return [index.stack, i, s[0], s[1]]; });
        const traces = [];
        stacks.forEach(function (stack) {
            const codes = stack[0], counts = xs.map(function () { return 0; });
            let any = false;
            years.forEach(function (y, r) {
                if (y !== null && keep[r] && (stack[1] < 0 ? codes[r] < 0 : codes[r] === stack[1])) {
                    counts[y - first] += 1;
                    any = true;
                }
            });
            if (any) { traces.push(bar(xs, counts, stack[2], stack[3])); }
        });
        const rest = xs.map(function () { return 0; });
        let anyRest = false;
        years.forEach(function (y, r) { if (y !== null && !keep[r]) { rest[y - first] += 1; anyRest = true; } });
        if (anyRest) { traces.push(bar(xs, rest, 'Filtered out', colours.faded)); }
        const shapes = [];
        const range = state.years;
        if (range && (range.low !== null || range.high !== null)) {
            shapes.push({type: 'rect', xref: 'x', yref: 'paper', x0: (range.low !== null ? range.low : first) - 0.5,
                         x1: (range.high !== null ? range.high : last) + 0.5, y0: 0, y1: 1,
                         fillcolor: 'rgba(255, 200, 0, 0.15)', line: {width: 0}, layer: 'below'});
        }
        return {data: traces, layout: Object.assign({}, layout, {shapes: shapes})};
    }

    // The map's lit points (graph_highlight): per node trace the points kept (null: all), and coloured by
    // selection the papers' colours and the legend's names; {traces, changes} for one Plotly.restyle
    function mapChanges(index, data, keep, selection) {
        const row = lookups(index).row, names = index.traces;
        const ring = data.findIndex(function (t, i) { return i >= names.nodes && t.name === names.ring; });
        const traces = [], changes = {selectedpoints: [], 'marker.color': [], name: [], visible: []};
        for (let i = names.nodes; i < ring; i++) {
            const keys = data[i].customdata || [], lit = [];
            keys.forEach(function (key, j) {
                const r = row.get(key);
                if (r !== undefined && keep[r]) { lit.push(j); }
            });
            traces.push(i);
            changes.selectedpoints.push(data[i].name === names.outside || lit.length === keys.length ? null : lit);
            changes['marker.color'].push(selection && data[i].name === 'Papers' ? keys.map(function (key) {
                const r = row.get(key), g = r === undefined ? -1 : selection.groups[r];
                return g < 0 ? COLOURED : g;
            }) : undefined);
            changes.name.push(undefined);
            changes.visible.push(undefined);
        }
        if (selection) {
            for (let j = 0; j < COLOURED; j++) {
                traces.push(ring + 1 + j);
                changes.selectedpoints.push(undefined);
                changes['marker.color'].push(undefined);
                changes.name.push(j < selection.names.length ? selection.names[j] : '');
                changes.visible.push(j < selection.names.length);
            }
        }
        Object.keys(changes).forEach(function (name) {  // an attribute named at all is redrawn, even unchanged
            if (changes[name].every(function (v) { return v === undefined; })) { delete changes[name]; }
        });
        return {traces: traces, changes: changes};
    }

    // Everything the page redraws for ``state``: {count, keep, coloured (the selections), selection (the
    // same, when the map and histogram are coloured by them)}; null when the server must
    function views(index, state, match) {
        const keep = keeps(index, state, match);
        if (!keep) { return null; }
        const kept = keep.reduce(function (n, k) { return n + k; }, 0);
        const coloured = selections(index, state);
        return {count: kept + ' of ' + index.keys.length + ' papers', keep: keep, coloured: coloured,
                selection: state.colour === 'selection' ? coloured : null};
    }

    // The paper list's rows for ``drawn`` (views; null: as the server's rows say): which are kept, and their
    // selections, read by the grid's functions (paper-list.js), which are asked again here
    function list(index, drawn) {
        const shade = drawn && Array.from(drawn.coloured.groups, function (g) { return g < 0 ? undefined : g; });
        filter.listed = drawn && {row: lookups(index).row, keep: drawn.keep, numbers: drawn.coloured.numbers,
                                  shade: shade};
        let api = null;
        try {
            api = root.dash_ag_grid.getApi('ex-list');
        } catch (notYet) {  // the grid, once it starts, filters by what is set above
            return;
        }
        api.onFilterChanged();
        api.refreshCells({columns: ['selection']});  // the cells whose numbers changed (and so their colour)
    }

    const filter = {parseState: parseState, toUrl: toUrl, next: next, keeps: keeps, selections: selections,
                    yearsFigure: yearsFigure, mapChanges: mapChanges, views: views, listed: null};

    // Draws the count, the histogram and the map for ``drawn`` (views) of ``changed``; false when the page
    // has no graphs to draw on yet. The list follows a moment later: it takes longer.
    function paint(index, changed, drawn) {
        const map = root.document.querySelector('#ex-graph .js-plotly-plot');
        const years = root.document.querySelector('#ex-years .js-plotly-plot');
        if (!map || !years || !years.layout) { return false; }
        // the count too, in the frame that shows the graphs (Dash sets its children, the same text, after the
        // callback returns: a frame or more later)
        const count = root.document.getElementById('ex-count');
        if (count && count.childNodes.length === 1 && count.firstChild.nodeType === 3) {
            count.firstChild.nodeValue = drawn.count;
        }
        const figure = yearsFigure(index, drawn.keep, changed, drawn.selection, years.layout);
        if (figure) { root.Plotly.react(years, figure.data, figure.layout); }
        const changes = mapChanges(index, map.data, drawn.keep, drawn.selection);
        root.Plotly.restyle(map, changes.changes, changes.traces);
        root.setTimeout(function () { list(index, drawn); }, 0);
        return true;
    }

    let page = null;  // {index, match, version}: the stores the clientside callbacks were last given

    function current(index, version) {  // whether the index the page holds is that of the corpus it shows
        return Boolean(index) && index.version === version;
    }
    let early = null;  // {from, url, drawn}: a click drawn from its DOM event, for ``clicked`` to take up

    // A click on a cloud's button, a chip, a chip's operator or "Clear filters" is drawn from the DOM event,
    // before Dash's dispatch of it (about 15 ms at 10k papers) reaches ``clicked``, which then finds it drawn.
    // While one is drawn and not yet taken up, a further click is left to Dash, which knows the URL it makes.
    function onClick(event) {
        const button = event.target && event.target.closest && event.target.closest('button');
        if (!button || !page || early || !current(page.index, page.version)) { return; }
        let trigger = button.id;
        if (trigger !== 'ex-clear') {
            try {
                trigger = JSON.parse(trigger);
            } catch (notJson) {
                return;
            }
            if (!trigger || ['ex-tag', 'ex-selector', 'ex-op', 'ex-chip'].indexOf(trigger.type) < 0) { return; }
        }
        const search = root.location.search, state = parseState(search), changed = next(state, trigger, 1);
        const url = toUrl(changed);
        if (url === toUrl(state)) { return; }
        const drawn = views(page.index, changed, page.match);
        if (drawn && paint(page.index, changed, drawn)) { early = {from: search, url: url, drawn: drawn}; }
    }

    // The clientside callback of a filter click (app/pages/explorer.py): [the new URL, the count, the URL
    // drawn, the list's rows drawn]. The histogram, the map and the list are drawn on the spot (or were, from
    // the click's DOM event): through its figure property a graph redraws a frame later. The graphs' figure
    // properties then lag behind what they show, until the server next sends one, which it does for any
    // other state than the one drawn here; the list's rows stay (the server sends new ones when the search,
    // and so its marks, changed).
    filter.clicked = function (_tags, _chips, _selectors, _ops, yearsSelected, yearsClicked, _clear, search, index,
                               match, version) {
        page = {index: index, match: match, version: version};
        const no = root.dash_clientside.no_update;
        const context = root.dash_clientside.callback_context;
        const value = context.triggered.length ? context.triggered[0].value : null;
        const state = parseState(search), changed = next(state, context.triggered_id, value, yearsSelected,
                                                          yearsClicked);
        const url = toUrl(changed);
        const ahead = early && early.from === search && early.url === url ? early.drawn : null;
        early = null;
        if (url === toUrl(state)) { return [no, no, no, no]; }
        const drawn = ahead || (current(index, version) ? views(index, changed, match) : null);
        if (!drawn || !(ahead || paint(index, changed, drawn))) { return [url, no, null, no]; }
        const rows = changed.text === state.text ? {version: version, state: url} : no;
        return [url, drawn.count, url, rows];
    };

    // The clientside callback of new rows, a search's answer or a new index: the list shows the page's
    // state by the browser's answer where it has one, else by the server's rows; the page says which
    // corpus version the browser filters on (the explorer's ``data-filter-index``).
    filter.relisted = function (_rows, match, index, search, version) {
        page = {index: index, match: match, version: version};
        const ready = current(index, version);
        list(index, ready ? views(index, parseState(search), match) : null);
        root.document.querySelector('.explorer').dataset.filterIndex = ready ? version : '';
        return root.dash_clientside.no_update;
    };

    if (typeof module !== 'undefined' && module.exports) { module.exports = filter; }
    if (root.window) {
        root.dash_clientside = root.dash_clientside || {};  // Dash's own, when its renderer came first
        root.dash_clientside.explorer = filter;
        root.document.addEventListener('click', onClick, true);  // before the page's own handlers
    }
})(typeof window !== 'undefined' ? window : globalThis);
