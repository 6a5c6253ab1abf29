// Draws every <canvas data-chart="ID"> from the JSON in <script id="ID"> (Django's json_script):
// {type, labels, datasets: [{label, data}], xTitle, yTitle}. Chart.js is vendored (vendor/chart.umd.js).
"use strict";
(function () {
  const palette = ["#417690", "#e07b39", "#5b9e5b", "#b0413e", "#7c5fa8", "#c4a000", "#3aa6a6", "#8c564b", "#d46fb3", "#7f7f7f"];
  function draw(canvas) {
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const spec = JSON.parse(source.textContent);
    const type = spec.type || "line";
    const datasets = spec.datasets.map(function (dataset, index) {
      const colour = palette[index % palette.length];
      return Object.assign({borderColor: colour, backgroundColor: type === "bar" ? colour : colour + "33", pointRadius: 2, spanGaps: false}, dataset);
    });
    new window.Chart(canvas, {
      type: type,
      data: {labels: spec.labels, datasets: datasets},
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: {mode: "index", intersect: false},
        plugins: {legend: {display: datasets.length > 1}, tooltip: {enabled: true}},
        scales: {
          x: {title: {display: Boolean(spec.xTitle), text: spec.xTitle}},
          y: {beginAtZero: true, title: {display: Boolean(spec.yTitle), text: spec.yTitle}},
        },
      },
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  });
})();
