// Draws the dashboards' charts from the JSON the page carries (json_script, id "dashboard-charts"):
// each <canvas data-chart="KEY"> gets chart KEY. A click on a bar opens the list behind it
// (links[datasetIndex][index]); no inline script anywhere (CSP).
(function () {
  const PALETTE = ["#2f5bea", "#d92d20", "#1f8a4c", "#b54708", "#7a5af8", "#0e9384", "#c11574", "#667085"];

  function draw(canvas, spec) {
    const links = spec.links || [];
    const datasets = spec.datasets.map((d, i) => ({
      label: d.label, data: d.data, backgroundColor: PALETTE[i % PALETTE.length], borderWidth: 0,
    }));
    const scale = { stacked: Boolean(spec.stacked) };
    const y = Object.assign({ beginAtZero: true }, scale, spec.max ? { max: spec.max } : {});
    return new Chart(canvas, {
      type: spec.type || "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: { x: scale, y: y },
        plugins: { legend: { display: datasets.length > 1 } },
        onHover: (event, elements) => {
          const hit = elements.length && (links[elements[0].datasetIndex] || [])[elements[0].index];
          event.native.target.style.cursor = hit ? "pointer" : "default";
        },
        onClick: (event, elements) => {
          if (!elements.length) return;
          const url = (links[elements[0].datasetIndex] || [])[elements[0].index];
          if (url) window.location.assign(url);
        },
      },
    });
  }

  function start() {
    const source = document.getElementById("dashboard-charts");
    if (!source || typeof Chart === "undefined") return;
    const specs = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      const spec = specs[canvas.dataset.chart];
      if (spec && !spec.empty) canvas.chart = draw(canvas, spec);
    });
    document.body.dataset.chartsDrawn = "true";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
