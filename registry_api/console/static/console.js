// Progressive enhancement: every chart's numbers are also in the table below it; this draws them.
// Data comes from <script type="application/json"> blocks (no inline script: the CSP forbids it).
(function () {
  "use strict";
  if (typeof Chart === "undefined") return;
  var palette = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563"];

  function read(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : [];
  }

  function latency(canvas, rows) {
    var classes = [], variants = [];
    rows.forEach(function (r) {
      if (classes.indexOf(r.device_class) < 0) classes.push(r.device_class);
      if (variants.indexOf(r.variant) < 0) variants.push(r.variant);
    });
    var datasets = variants.map(function (variant, i) {
      return {
        label: variant + " p90",
        backgroundColor: palette[i % palette.length],
        data: classes.map(function (c) {
          var hit = rows.find(function (r) { return r.device_class === c && r.variant === variant; });
          return hit ? hit.p90_ms : null;
        })
      };
    });
    return {
      type: "bar",
      data: { labels: classes, datasets: datasets },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: { beginAtZero: true, title: { display: true, text: "ms (p90, lower is better)" } } } }
    };
  }

  function recall(canvas, rows) {
    var datasets = [{ label: canvas.dataset.current, backgroundColor: palette[0],
      data: rows.map(function (r) { return r.recall; }) }];
    if (canvas.dataset.baseline) {
      datasets.unshift({ label: canvas.dataset.baseline, backgroundColor: "#9ca3af",
        data: rows.map(function (r) { return r.baseline; }) });
    }
    return {
      type: "bar",
      data: { labels: rows.map(function (r) { return r.label; }), datasets: datasets },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: { min: 0, max: 1, title: { display: true, text: "recall" } } } }
    };
  }

  // A line per series: data-x names the x field, data-y one or more y fields (comma-separated),
  // data-series the fields whose values name a line (comma-separated; absent: one line per y field);
  // x values keep the rows' order unless data-sort="true"; data-type="bar" draws bars side by side.
  function line(canvas, rows) {
    var d = canvas.dataset, ys = d.y.split(","), keys = d.series ? d.series.split(",") : null;
    var xs = [];
    rows.forEach(function (r) { var x = String(r[d.x]); if (xs.indexOf(x) < 0) xs.push(x); });
    if (d.sort === "true") xs.sort();
    var series = {};
    rows.forEach(function (r) {
      ys.forEach(function (y) {
        var name = keys ? keys.map(function (k) { return r[k]; }).join(" · ") : y;
        if (keys && ys.length > 1) name += " " + y;
        if (!series[name]) series[name] = xs.map(function () { return null; });
        series[name][xs.indexOf(String(r[d.x]))] = r[y];
      });
    });
    var datasets = Object.keys(series).sort().map(function (name, i) {
      var color = palette[i % palette.length];
      return { label: name, data: series[name], borderColor: color, backgroundColor: color, spanGaps: true, tension: 0.2 };
    });
    return {
      type: d.type === "bar" ? "bar" : "line",
      data: { labels: xs, datasets: datasets },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: { beginAtZero: true, title: { display: !!d.unit, text: d.unit || "" } } } }
    };
  }

  var kinds = { latency: latency, recall: recall, line: line };
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var build = kinds[canvas.dataset.chart];
    if (build) new Chart(canvas, build(canvas, read(canvas.dataset.source)));
  });
})();
