// Dash replaces a redrawn part of the page (the tag clouds after a tag click, the chips, the panel), and
// the element the user acted on goes with it: focus falls back to the page's top. When that happens,
// focus goes to the new element with the same id, so that a keyboard user goes on from where they were.
(function () {
    let last = null;  // the id of the element that last had focus
    document.addEventListener('focusin', function (event) {
        if (event.target && event.target.id) { last = event.target.id; }
    });
    new MutationObserver(function () {
        if (!last || (document.activeElement && document.activeElement !== document.body)) { return; }
        const again = document.getElementById(last);
        if (again && again.isConnected) { again.focus({preventScroll: true}); }
    }).observe(document.documentElement, {childList: true, subtree: true});
})();
