// Draws every chart of the page from the figure JSON embedded next to it (no inline scripts, no network).
"use strict";
function drawCharts() {
  for (const el of document.querySelectorAll(".chart[data-figure]")) {
    const source = document.getElementById(el.dataset.figure);
    if (!source) continue;
    const fig = JSON.parse(source.textContent);
    Plotly.newPlot(el, fig.data, fig.layout, {responsive: true, displaylogo: false}).then(() => {
      el.dataset.rendered = String(fig.data.length);
    });
  }
}
document.addEventListener("DOMContentLoaded", drawCharts);
