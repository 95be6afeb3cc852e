// Draws the national dashboard's charts from the figures the page embeds. Each chart
// has its table beside it (the text alternative); series differ by line style and
// point shape as well as colour, and the target is always a dashed line.
(function () {
  const data = JSON.parse(document.getElementById("datos-progreso").textContent);
  const meta = data.target * 100;
  const say = data.labels;
  const pct = (x) => +(x * 100).toFixed(1);
  const goal = (n) => ({
    type: "line", label: say.goal + " " + meta + " %", data: Array(n).fill(meta),
    borderColor: "#c62828", borderDash: [6, 4], pointRadius: 0, borderWidth: 2,
  });
  const percentAxis = { y: { min: 0, max: 100, ticks: { callback: (v) => v + " %" } } };
  new Chart(document.getElementById("grafico-tendencia"), {
    type: "line",
    data: {
      labels: data.trend.map((t) => t.month),
      datasets: [
        { label: say.certified_pct, data: data.trend.map((t) => pct(t.ratio)), borderColor: "#14325a", pointStyle: "circle", pointRadius: 4, tension: 0.2 },
        goal(data.trend.length),
      ],
    },
    options: { animation: false, scales: percentAxis },
  });
  const proj = data.projection;
  const target = Math.ceil(data.target * data.total);
  const series = [
    { label: say.at_current, data: proj.map((p) => p.current), borderColor: "#14325a", borderDash: [2, 3], pointStyle: "circle", pointRadius: 3 },
  ];
  if (proj.length && proj[0].needed !== undefined) {
    series.push({ label: say.at_needed, data: proj.map((p) => p.needed), borderColor: "#6a1b9a", pointStyle: "triangle", pointRadius: 4 });
  }
  series.push({ label: say.goal + " (" + target + ")", data: proj.map(() => target), borderColor: "#c62828", borderDash: [6, 4], pointRadius: 0, borderWidth: 2 });
  new Chart(document.getElementById("grafico-proyeccion"), {
    type: "line",
    data: { labels: proj.map((p) => p.month), datasets: series },
    options: { animation: false, scales: { y: { min: 0 } } },
  });
  const bars = (id, keys, name, shares) => new Chart(document.getElementById(id), {
    type: "bar",
    data: {
      labels: keys.map(name),
      datasets: [
        { type: "bar", label: say.certified_pct, data: keys.map((k) => pct(shares[k].ratio)), backgroundColor: "#2e5c8a" },
        goal(keys.length),
      ],
    },
    options: { animation: false, scales: percentAxis },
  });
  const levels = Object.keys(data.by_level);
  bars("grafico-niveles", levels, (l) => data.level_names[l] || l, data.by_level);
  const depts = Object.keys(data.by_department);
  const short = (d) => (data.department_names[d] || d).replace(/^Gobierno Autónomo Departamental de /, "");
  bars("grafico-departamentos", depts, short, data.by_department);
  document.body.dataset.graficos = "listos";
})();
