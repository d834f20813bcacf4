// The filter box of signaltrace's debug-toolbar panel.
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
    const counter = panel.querySelector("[data-st-shown]");
    if (counter) {
        counter.textContent = words.length
            ? `${shown} of ${rows.length} dispatches`
            : `${rows.length} dispatches`;
    }
}

if (djDebug && !djDebug.dataset.stFilterReady) {
    djDebug.dataset.stFilterReady = "1";
    djDebug.addEventListener("input", (event) => {
        if (event.target.classList && event.target.classList.contains("st-filter")) {
            applyFilter(event.target);
        }
    });
}
