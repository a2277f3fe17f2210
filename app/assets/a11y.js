// Dash 4's own markup fails axe-core where no component property reaches (Dash 4.4): RadioItems and
// Checklist are a role=listbox without a name whose role=option labels wrap native inputs (controls
// nested in controls); Dropdown gives keyboard focus to an aria-hidden input and opens an unnamed
// dialog; Upload's file input has no label. Each is mended in place, and again whenever Dash redraws
// or React resets an attribute.
(function () {
    function mend(root) {
        root.querySelectorAll('.dash-options-list[role="listbox"]').forEach(function (list) {
            // the native radio buttons and check boxes inside their labels say what they are themselves
            list.setAttribute('role', list.classList.contains('dash-radioitems') ? 'radiogroup' : 'group');
        });
        root.querySelectorAll('.dash-options-list [role="option"], .dash-options-list [aria-selected]')
            .forEach(function (option) { option.removeAttribute('role'); option.removeAttribute('aria-selected'); });
        root.querySelectorAll('.dash-dropdown-focus-target[aria-hidden]').forEach(function (target) {
            // the element that takes the focus is named as its dropdown's button is (the value shown)
            const button = target.parentElement && target.parentElement.querySelector('button[aria-labelledby]');
            target.removeAttribute('aria-hidden');
            if (button) { target.setAttribute('aria-labelledby', button.getAttribute('aria-labelledby')); }
        });
        root.querySelectorAll('.dash-dropdown[aria-controls]').forEach(function (button) {
            // an open dropdown's options are a dialog of their own, named as its dropdown is
            const dialog = document.getElementById(button.getAttribute('aria-controls'));
            if (dialog && !dialog.hasAttribute('aria-labelledby') && button.hasAttribute('aria-labelledby')) {
                dialog.setAttribute('aria-labelledby', button.getAttribute('aria-labelledby'));
            }
        });
        root.querySelectorAll('.upload input[type="file"]:not([aria-label])').forEach(function (input) {
            input.setAttribute('aria-label', input.closest('.upload').textContent.trim() || 'Choose a file');
        });
    }

    let pending = false;
    new MutationObserver(function () {
        if (pending) { return; }
        pending = true;
        window.requestAnimationFrame(function () { pending = false; mend(document); });
    }).observe(document.documentElement, {childList: true, subtree: true, attributes: true,
                                          attributeFilter: ['role', 'aria-selected', 'aria-hidden', 'aria-controls']});
    mend(document);
})();
