// The filter box (dispatches, slow deletes, on_commit callbacks, bypassed writes) and the
// time-axis switch of signaltrace's debug-toolbar panel.
// Loaded as a module each time the panel renders (a module runs once per page), so
// it listens on the toolbar's root and handles every rendering of the panel.
const root = document.getElementById("djDebugRoot");
const djDebug = (root && root.shadowRoot ? root.shadowRoot : document).querySelector("#djDebug");

function applyFilter(input) {
    const panel = input.closest("[data-st-panel]");
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    const rows = panel.querySelectorAll(".st-dispatch");
    for (const row of rows) {
        const text = row.dataset.stFilter || "";
        const match = words.every((word) => text.includes(word));
        row.hidden = !match;
        if (match) {
            shown += 1;
        }
    }
    // A slow delete's row stays when its own words match or a dispatch it contains does.
    for (const row of panel.querySelectorAll(".st-delete")) {
        const text = row.dataset.stFilter || "";
        const contains = panel.querySelector(`.st-in-delete[data-st-delete="${row.dataset.stDelete}"]:not([hidden])`);
        row.hidden = !(words.every((word) => text.includes(word)) || (words.length && contains));
    }
    // An on_commit callback's or a bypassed write's row: its own words (the receiver that made it included).
    for (const row of panel.querySelectorAll(".st-effect")) {
        const text = row.dataset.stFilter || "";
        row.hidden = !words.every((word) => text.includes(word));
    }
    const counter = panel.querySelector("[data-st-shown]");
    if (counter) {
        counter.textContent = words.length
            ? `${shown} of ${rows.length} dispatches`
            : `${rows.length} dispatches`;
    }
}

// The waterfall draws every bar on both axes; the panel's data-st-axis says which
// one the stylesheet shows.
function chooseAxis(button) {
    const panel = button.closest("[data-st-panel]");
    panel.dataset.stAxis = button.dataset.stAxisChoice;
    for (const choice of panel.querySelectorAll("[data-st-axis-choice]")) {
        choice.setAttribute("aria-pressed", String(choice === button));
    }
}

if (djDebug && !djDebug.dataset.stFilterReady) {
    djDebug.dataset.stFilterReady = "1";
    djDebug.addEventListener("input", (event) => {
        if (event.target.classList && event.target.classList.contains("st-filter")) {
            applyFilter(event.target);
        }
    });
    djDebug.addEventListener("click", (event) => {
        const button = event.target.closest && event.target.closest("[data-st-axis-choice]");
        if (button) {
            chooseAxis(button);
        }
    });
}
