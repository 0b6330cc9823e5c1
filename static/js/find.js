// Contact and Regarding searches as you type, for the forms that choose them inside themselves
// (the appointment form, Find email): matches are added to the choices from the JSON search
// endpoints the email page's choosers use. Without this file the Search buttons do the same on
// the server. A fieldset with data-pick offers each match as a radio of that name (one choice,
// the latest search's matches); otherwise contacts are boxes to tick and records options.
"use strict";
document.querySelectorAll("fieldset[data-find]").forEach((fieldset) => {
  const input = fieldset.querySelector("input[type=search]");
  const status = fieldset.querySelector("[data-status]");
  const boxes = fieldset.querySelector("[data-found]");
  const select = fieldset.querySelector("select");
  const pick = fieldset.dataset.pick;
  let timer = null;
  let latest = 0;
  const known = () => new Set(Array.from(fieldset.querySelectorAll("input[type=checkbox], input[type=radio], option"),
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
  const hint = () => (select ? "choose one above" : pick ? "pick one, then Search" : "tick the ones to add");
  const search = () => {
    const q = input.value.trim();
    const request = ++latest;
    if (!q) { status.textContent = ""; return; }
    fetch(`${fieldset.dataset.find}?q=${encodeURIComponent(q)}`, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => { if (!response.ok) throw new Error(String(response.status)); return response.json(); })
      .then((data) => {
        if (request !== latest) return;
        if (pick) {  // one choice: the matches of this search replace the last one's, bar a picked one
          boxes.querySelectorAll("input[type=radio]:not(:checked)").forEach((radio) => radio.closest("label").remove());
        }
        const seen = known();
        data.results.filter((match) => !seen.has(match.value)).forEach(add);
        status.textContent = data.results.length
          ? `${data.results.length} match${data.results.length === 1 ? "" : "es"}: ${hint()}.`
          : `Nothing matches “${q}”.`;
      })
      .catch(() => { if (request === latest) status.textContent = "Search failed. Press the Search button to try again."; });
  };
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 200); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); clearTimeout(timer); search(); }
  });
});
