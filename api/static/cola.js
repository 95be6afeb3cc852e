// The alert queue (/console/alertas): keyboard shortcuts, choosing rows for the
// actions, and a poll that only says how many alerts arrived since the page was
// drawn (the list under the analyst never reloads by itself). Every text comes from
// the page (the server's catalogues); this file holds none.
(function () {
  "use strict";
  const table = document.getElementById("alertas");
  const rows = table ? Array.from(table.querySelectorAll("tbody tr")) : [];
  const help = document.getElementById("atajos");
  const chosenText = document.getElementById("elegidas");
  let current = -1;

  function boxes() {
    return Array.from(document.querySelectorAll("input.elegir"));
  }

  function countChosen() {
    if (!chosenText) return;
    const n = boxes().filter((b) => b.checked).length;
    chosenText.textContent = chosenText.dataset.plantilla.replace("{n}", String(n));
  }

  function move(to) {
    if (!rows.length) return;
    if (current >= 0) rows[current].classList.remove("actual");
    current = Math.max(0, Math.min(rows.length - 1, to));
    const row = rows[current];
    row.classList.add("actual");
    const link = row.querySelector("a.abrir");
    if (link) link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function currentBox() {
    return current >= 0 ? rows[current].querySelector("input.elegir") : null;
  }

  // a/d act on the rows chosen, or on the row the cursor is on when none is.
  function chooseCurrentIfNone() {
    if (boxes().some((b) => b.checked)) return true;
    const box = currentBox();
    if (!box) return false;
    box.checked = true;
    countChosen();
    return true;
  }

  function toggleHelp(show) {
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
    if (!help.hidden) document.getElementById("atajos-cerrar").focus();
  }

  // Keys typed into a field are the field's; a checkbox or a link keeps the shortcuts.
  function typing(target) {
    if (!target) return false;
    if (target.tagName === "INPUT") return !/^(checkbox|radio|button|submit)$/.test(target.type);
    return target.isContentEditable || /^(SELECT|TEXTAREA)$/.test(target.tagName);
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && help && !help.hidden) {
      toggleHelp(false);
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    const key = ev.key;
    if (key === "j") move(current + 1);
    else if (key === "k") move(current - 1);
    else if (key === "x") {
      const box = currentBox();
      if (box) {
        box.checked = !box.checked;
        countChosen();
      }
    } else if (key === "o" && current >= 0) rows[current].querySelector("a.abrir").click();
    else if (key === "a" && document.getElementById("b-acusar")) {
      if (chooseCurrentIfNone()) document.getElementById("b-acusar").click();
    } else if (key === "d" && document.getElementById("b-descartar")) {
      if (chooseCurrentIfNone()) document.getElementById("l-motivo").focus();
    } else if (key === "/") document.getElementById("f-q").focus();
    else if (key === "?") toggleHelp();
    else return;
    ev.preventDefault();
  });

  // Enter in a field of the actions runs that field's action, never another.
  [["l-motivo", "b-descartar"], ["l-analista", "b-asignar"], ["l-incidente", "b-adjuntar"]].forEach(function (pair) {
    const field = document.getElementById(pair[0]);
    if (!field) return;
    field.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        ev.preventDefault();
        document.getElementById(pair[1]).click();
      }
    });
  });

  const all = document.getElementById("todas");
  if (all) {
    all.addEventListener("change", function () {
      boxes().forEach((b) => (b.checked = all.checked));
      countChosen();
    });
  }
  boxes().forEach((b) => b.addEventListener("change", countChosen));
  rows.forEach(function (row, i) {
    row.addEventListener("click", function () {
      if (current >= 0) rows[current].classList.remove("actual");
      current = i;
      row.classList.add("actual");
    });
  });
  const close = document.getElementById("atajos-cerrar");
  if (close) close.addEventListener("click", () => toggleHelp(false));

  // The poll: how many arrived since, under the same filters; a banner, no reload.
  const banner = document.getElementById("nuevas");
  const holder = table || document.getElementById("lote");
  if (!banner || !table) return;
  const since = table.dataset.desde;
  const query = table.dataset.consulta;
  const every = parseInt(table.dataset.intervalo, 10) || 30000;

  function poll() {
    if (document.hidden) return Promise.resolve();
    const url = "/console/alertas-nuevas?" + (query ? query + "&" : "") + "desde=" + encodeURIComponent(since);
    return fetch(url, { headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : null))
      .then(function (data) {
        if (!data || !data.nuevas) return;
        const text = data.nuevas === 1 ? banner.dataset.una : banner.dataset.varias;
        document.getElementById("nuevas-enlace").textContent = text.replace("{n}", String(data.nuevas));
        banner.hidden = false;
      })
      .catch(function () {});
  }
  window.vigiaCola = { sondear: poll };
  holder.dataset.sondeo = String(every);
  setInterval(poll, every);
})();
