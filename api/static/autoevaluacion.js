// The self-assessment and review pages without reloading: a form marked
// data-parcial="c-ID" is sent in the background and, from the page the server
// answers, only that control and the live summaries (data-vivo) are replaced, so
// whatever is typed in other controls stays as it is. Without this script every
// form still works, one page load each; the answers are one form across the page
// (form="respuestas"), so that load saves every control's changed answer, and a
// control's «Adjuntar» belongs to it too (its files posted with every answer).
(function () {
  let queue = Promise.resolve(); // one request at a time, in the order made
  let pending = 0; // body[data-ocupado] says whether a request is still on its way
  const busy = (n) => { pending += n; document.body.dataset.ocupado = pending ? "si" : "no"; };

  function swap(doc, id) {
    const fresh = doc.getElementById(id);
    const old = document.getElementById(id);
    if (fresh && old) old.replaceWith(document.importNode(fresh, true));
    return Boolean(fresh);
  }

  function show(target, text) {
    // The reason next to the control's first form (as the server places its own).
    const form = document.getElementById(target)?.querySelector("[data-parcial]");
    if (!form) return;
    let p = form.querySelector(".error");
    if (!p) {
      p = document.createElement("p");
      p.className = "error";
      p.setAttribute("role", "alert");
      form.appendChild(p);
    }
    p.textContent = text;
  }

  async function send(action, target, body) {
    const resp = await fetch(action, { method: "POST", body: body, credentials: "same-origin" });
    const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    if (!swap(doc, target)) {
      // Not the page (a refusal before the form ran): its reason, the input kept.
      const reason = doc.querySelector(".error");
      show(target, reason ? reason.textContent : resp.status + " " + resp.statusText);
      return false;
    }
    document.querySelectorAll("[data-vivo][id]").forEach((el) => swap(doc, el.id));
    const general = doc.getElementById("error-general");
    if (general) show(target, general.textContent);
    const saved = document.getElementById(target)?.querySelector(".guardado");
    if (saved && resp.ok) saved.textContent = "✓";
    return resp.ok;
  }

  function submit(form) {
    const files = form.querySelector("input[type=file][multiple]");
    let bodies = [new FormData(form)];
    if (files && files.files.length > 1) {
      // One request per file: each within the evidence size limit, each attached.
      bodies = Array.from(files.files).map((f) => {
        const b = new FormData(form);
        b.delete("file");
        b.append("file", f, f.name);
        return b;
      });
    }
    enqueue(form.action, form.dataset.parcial, bodies);
  }

  function enqueue(action, target, bodies) {
    busy(bodies.length);
    bodies.forEach((b) => {
      queue = queue
        .then(() => send(action, target, b))
        .catch((e) => show(target, String(e)))
        .finally(() => busy(-1));
    });
  }

  function attachOne(part) {
    // A control's «Adjuntar» (a button of the answers form, data-parcial on its
    // area): only that control's files, one request each, to the evidence address.
    const form = document.getElementById("respuestas");
    const button = part.querySelector("button[name=adjuntar]");
    const input = part.querySelector("input[type=file]");
    const chosen = Array.from(input.files);
    const bodies = (chosen.length ? chosen : [null]).map((f) => {
      const b = new FormData();
      b.append("csrf", form.elements.namedItem("csrf").value);
      b.append("control_id", button.value);
      b.append("expires_on", part.querySelector("input[type=date]").value);
      if (f) b.append("file", f, f.name);
      return b;
    });
    enqueue(button.formAction, part.dataset.parcial, bodies);
  }

  function answerOne(form, part) {
    // A control's button in the page-wide answers form: only that control's answer,
    // to its own address (data-accion); the other controls keep what is typed.
    const b = new FormData();
    b.append("csrf", form.elements.namedItem("csrf").value);
    b.append("answer", part.querySelector("select[name=answer]").value);
    b.append("justification", part.querySelector("textarea[name=justification]").value);
    enqueue(part.dataset.accion, part.dataset.parcial, [b]);
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    const by = ev.submitter;
    if (by && by.name === "conservar") {
      // The previous round's evidence kept: this control alone, in the background.
      ev.preventDefault();
      const b = new FormData();
      b.append("csrf", form.elements.namedItem("csrf").value);
      enqueue(by.formAction, "c-" + by.value, [b]);
      return;
    }
    if (by && by.name === "adjuntar") {
      ev.preventDefault();
      attachOne(by.closest(".adjuntar"));
      return;
    }
    const part = by && by.name === "at" && by.closest("[data-accion]");
    if (part) {
      ev.preventDefault();
      answerOne(form, part);
      return;
    }
    if (!form.dataset.parcial) return; // the page-wide save: posted as it is
    ev.preventDefault();
    submit(form);
  });

  // Drag and drop onto a control's evidence area: the files go to its form.
  document.addEventListener("dragover", (ev) => {
    const zone = ev.target instanceof Element && ev.target.closest(".adjuntar");
    if (zone) { ev.preventDefault(); zone.classList.add("encima"); }
  });
  document.addEventListener("dragleave", (ev) => {
    const zone = ev.target instanceof Element && ev.target.closest(".adjuntar");
    if (zone) zone.classList.remove("encima");
  });
  document.addEventListener("drop", (ev) => {
    const zone = ev.target instanceof Element && ev.target.closest(".adjuntar");
    if (!zone || !ev.dataTransfer || !ev.dataTransfer.files.length) return;
    ev.preventDefault();
    zone.classList.remove("encima");
    zone.querySelector("input[type=file]").files = ev.dataTransfer.files;
    attachOne(zone);
  });
})();
