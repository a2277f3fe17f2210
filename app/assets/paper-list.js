// The explorer's paper list (dash-ag-grid): the little it needs that only the browser can do.
(function () {
    const functions = window.dashAgGridFunctions = window.dashAgGridFunctions || {};
    const components = window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {};

    // Enter on a cell opens its paper as a click does: the grid reports the same cellClicked.
    functions.openOnEnter = function (params, setGridProps) {
        if (params.event.key !== 'Enter' || !params.node || params.node.id == null) { return; }
        setGridProps({cellClicked: {value: params.value, colId: params.column.getColId(), rowIndex: params.rowIndex,
                                    rowId: params.node.id, timestamp: Date.now()}});
    };

    // The list sorted or filtered: its sort (first key first) and filter model go to the page's URL (once:
    // the page's own filter, applied by explorer-filter.js, is announced as a filter change too).
    let announced = null;
    functions.listViewChanged = function (params) {
        const sort = params.api.getColumnState().filter(c => c.sort)
            .sort((a, b) => (a.sortIndex || 0) - (b.sortIndex || 0)).map(c => [c.colId, c.sort]);
        const view = {sort: sort, filter: params.api.getFilterModel()};
        if (JSON.stringify(view) === announced) { return; }
        announced = JSON.stringify(view);
        dash_clientside.set_props('ex-list-view', {data: view});
    };

    // The page's filter, beside the grid's own column filters: the browser's answer for the page's state
    // when it has one (explorer-filter.js, ``listed``: per corpus row whether it is kept and its selections),
    // else the server's (a row's ``out``, ``selection`` and ``shade``).
    const listed = function (params) {
        const explorer = window.dash_clientside && window.dash_clientside.explorer;
        const view = explorer && explorer.listed;
        const row = view && params.data ? view.row.get(params.data.key) : undefined;
        return row === undefined ? null : {view: view, row: row};
    };
    functions.listKeeps = function (params) {
        const at = listed(params);
        return at ? at.view.keep[at.row] === 1 : !(params.data && params.data.out);
    };
    functions.selectionNumbers = function (params) {
        const at = listed(params);
        return at ? at.view.numbers[at.row] : params.data && params.data.selection;
    };
    functions.selectionShade = function (params) {
        const at = listed(params);
        return at ? at.view.shade[at.row] : params.data && params.data.shade;
    };

    // A title with the words the search matched in bold: the row's marks are [start, end) of each.
    components.MarkedTitle = function (props) {
        const title = props.value || '';
        const parts = [];
        let at = 0;
        ((props.data && props.data.marks) || []).forEach(function (mark, i) {
            if (mark[0] > at) { parts.push(title.slice(at, mark[0])); }
            parts.push(React.createElement('strong', {key: i}, title.slice(mark[0], mark[1])));
            at = mark[1];
        });
        if (at < title.length) { parts.push(title.slice(at)); }
        return React.createElement('span', null, parts);
    };

    // The grid named for screen readers by the heading its container points to (data-grid-label).
    new MutationObserver(function () {
        document.querySelectorAll('[data-grid-label]').forEach(function (box) {
            const grid = box.querySelector('[role=grid], [role=treegrid]');
            const label = box.getAttribute('data-grid-label');
            if (grid && grid.getAttribute('aria-labelledby') !== label) { grid.setAttribute('aria-labelledby', label); }
        });
    }).observe(document.documentElement, {childList: true, subtree: true});
})();
