// The entity's exposure trend: findings per week and report kind, as a table (text
// only: every value goes in through textContent).
(function () {
  const box = document.getElementById("exposicion");
  if (!box) return;
  const table = document.getElementById("tabla-exposicion");
  const cell = (tag, text) => { const c = document.createElement(tag); c.textContent = text; return c; };
  fetch("/api/v1/entities/" + encodeURIComponent(box.dataset.entidad) + "/exposure", { credentials: "same-origin" })
    .then((r) => r.json())
    .then((d) => {
      const weeks = d.weeks.slice(-8);
      const from = d.weeks.length - weeks.length;
      const head = document.createElement("tr");
      head.appendChild(cell("th", box.dataset.informe));
      weeks.forEach((w) => head.appendChild(cell("th", w)));
      table.tHead.appendChild(head);
      const kinds = Object.keys(d.kinds);
      const body = table.tBodies[0];
      if (!kinds.length) {
        const tr = document.createElement("tr");
        const td = cell("td", box.dataset.vacio);
        td.colSpan = weeks.length + 1;
        tr.appendChild(td);
        body.appendChild(tr);
      }
      const line = (label, counts) => {
        const tr = document.createElement("tr");
        tr.appendChild(cell("th", label));
        counts.slice(from).forEach((n) => tr.appendChild(cell("td", String(n))));
        body.appendChild(tr);
      };
      kinds.forEach((k) => line(k, d.kinds[k]));
      if (kinds.length) line(box.dataset.altas, d.high);
      box.dataset.listo = "si";
    });
})();
