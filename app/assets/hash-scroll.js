// Dash draws a page after the browser has looked for its #anchor (a link such as /reproductions#paper2
// finds nothing yet): jump to the anchor once its element is there, for every new address.
(function () {
    let done = null;
    function jump() {
        const where = location.pathname + location.hash;
        if (!location.hash || where === done) { return; }
        const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
        if (target) {
            done = where;
            target.scrollIntoView({block: 'start'});
        }
    }
    new MutationObserver(jump).observe(document.documentElement, {childList: true, subtree: true});
    function again() { done = null; jump(); }  // a new visit to the same address jumps again
    ['hashchange', 'popstate', '_dashprivate_pushstate'].forEach(function (name) { window.addEventListener(name, again); });
})();
