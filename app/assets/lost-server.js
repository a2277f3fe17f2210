// A stopped or unreachable server: Dash's callbacks fail without a word, so the page says so and how to
// start it again. Every callback goes through fetch; the notice goes once an answer comes back.
(function () {
    const MESSAGE = "The explorer's server is not answering. Start it again with `survey serve` (in the folder of " +
        "your .bib files), then reload this page: the address keeps your filters.";

    function notice(show) {
        let box = document.getElementById('lost-server');
        if (!box && show) {
            box = document.createElement('div');
            box.id = 'lost-server';
            box.setAttribute('role', 'alert');
            box.textContent = MESSAGE;
            document.body.appendChild(box);
        }
        if (box) { box.hidden = !show; }
    }

    const fetchBefore = window.fetch;
    window.fetch = function (resource, init) {
        const url = String((resource && resource.url) || resource);
        const answer = fetchBefore.call(this, resource, init);
        if (!url.includes('_dash-update-component')) { return answer; }
        return answer.then(function (response) {
            notice(response.status === 502 || response.status === 503 || response.status === 504);
            return response;
        }, function (error) {
            notice(true);  // no answer at all: the connection was refused or dropped
            throw error;
        });
    };
})();
