// Contact and Regarding searches as you type, for every chooser: the email page's (a search of its
// own, then a Save), and the forms that choose inside themselves (the appointment form, Find email).
// Matches come from the JSON search endpoints. Without this file the Search buttons do the same on
// the server. An element with data-find is one chooser; with data-pick it offers each match as a
// radio of that name (one choice: the latest search's matches, bar a picked one); otherwise contacts
// are boxes to tick and records options. A chooser with a results form of its own (data-results-form)
// shows that form once there are matches, and its radios must be picked before it is saved.
"use strict";
document.querySelectorAll("[data-find]").forEach((chooser) => {
  const input = chooser.querySelector("input[type=search]");
  const status = chooser.querySelector("[data-status]");
  const boxes = chooser.querySelector("[data-found]");
  const select = chooser.querySelector("select");
  const resultsForm = chooser.querySelector("[data-results-form]");
  const pick = chooser.dataset.pick;
  let timer = null;
  let latest = 0;
  const known = () => new Set(Array.from(chooser.querySelectorAll("input[type=checkbox], input[type=radio], option"),
    (el) => el.value));
  const add = (match) => {
    const text = match.detail ? `${match.label} · ${match.detail}` : match.label;
    if (select) {
      select.append(new Option(text, match.value));
      return;
    }
    const label = document.createElement("label");
    label.className = "choice";
    const box = document.createElement("input");
    box.type = pick ? "radio" : "checkbox";
    box.name = pick || "contacts";
    box.value = match.value;
    box.required = Boolean(resultsForm);
    const span = document.createElement("span");
    if (pick) {
      const name = document.createElement("strong");
      name.textContent = match.label;
      const detail = document.createElement("span");
      detail.className = "muted";
      detail.textContent = match.detail;
      span.append(name, " ", detail);
    } else {
      span.textContent = text;
    }
    label.append(box, " ", span);
    boxes.append(label);
  };
  const hint = () => {
    if (select) return "choose one above";
    if (!pick) return "tick the ones to add";
    const save = (resultsForm || chooser.closest("form")).querySelector("button.primary");
    return `pick one, then ${save ? save.textContent.trim() : "Search"}`;
  };
  const show = (matches, q) => {
    if (pick) boxes.querySelectorAll("input[type=radio]:not(:checked)").forEach((radio) => radio.closest("label").remove());
    const seen = known();
    matches.filter((match) => !seen.has(match.value)).forEach(add);
    if (resultsForm) resultsForm.hidden = !boxes.querySelector("input");
    if (!q) status.textContent = "";
    else status.textContent = matches.length
      ? `${matches.length} match${matches.length === 1 ? "" : "es"}: ${hint()}.`
      : `Nothing matches “${q}”.`;
  };
  const search = () => {
    const q = input.value.trim();
    const request = ++latest;
    if (!q) { show([], ""); return; }
    fetch(`${chooser.dataset.find}?q=${encodeURIComponent(q)}`, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => { if (!response.ok) throw new Error(String(response.status)); return response.json(); })
      .then((data) => { if (request === latest) show(data.results, q); })
      .catch(() => { if (request === latest) status.textContent = "Search failed. Press the Search button to try again."; });
  };
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 200); });
  // Enter searches here instead of sending the form the box is in; on the email page the Search
  // button's own form does the same.
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); clearTimeout(timer); search(); }
  });
  if (resultsForm) {
    input.form.addEventListener("submit", (event) => { event.preventDefault(); clearTimeout(timer); search(); });
  }
});
