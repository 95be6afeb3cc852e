// Draws the certification dashboard's charts from the figures the page embeds.
(function () {
  const data = JSON.parse(document.getElementById("datos-progreso").textContent);
  const meta = data.target * 100;
  new Chart(document.getElementById("grafico-tendencia"), {
    type: "line",
    data: {
      labels: data.trend.map((t) => t.month),
      datasets: [
        { label: "% certificadas", data: data.trend.map((t) => +(t.ratio * 100).toFixed(1)), borderColor: "#14325a", tension: 0.2 },
        { label: "Meta " + meta + " %", data: data.trend.map(() => meta), borderColor: "#c62828", borderDash: [6, 4], pointRadius: 0 },
      ],
    },
    options: { animation: false, scales: { y: { min: 0, max: 100 } } },
  });
  const levels = Object.keys(data.by_level);
  new Chart(document.getElementById("grafico-niveles"), {
    type: "bar",
    data: {
      labels: levels.map((l) => data.level_names[l] || l),
      datasets: [
        { label: "Certificadas", data: levels.map((l) => data.by_level[l].certified), backgroundColor: "#2e7d32" },
        { label: "Registradas", data: levels.map((l) => data.by_level[l].total), backgroundColor: "#b0bec5" },
      ],
    },
    options: { animation: false },
  });
  document.body.dataset.graficos = "listos";
})();
