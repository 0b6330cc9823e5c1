// The calendar pages work without this; it only saves a click or two.
"use strict";
document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});
const allDay = document.querySelector("#id_all_day");
if (allDay) {
  const timed = [".field-start_time", ".field-end_time"].map((s) => document.querySelector(s));
  const lastDay = document.querySelector(".field-end_date");
  const apply = () => {
    timed.forEach((field) => { if (field) field.hidden = allDay.checked; });
    if (lastDay) lastDay.hidden = !allDay.checked;
  };
  allDay.addEventListener("change", apply);
  apply();
}
// Hour grids open at the working day's first hour; the hours before and after are a scroll away.
document.querySelectorAll(".cal-grid[data-scroll-row]").forEach((grid) => {
  const scroller = grid.querySelector(".cal-scroll");
  const body = grid.querySelector(".cal-body");
  if (!scroller || !body) return;
  scroller.scrollTop = (body.offsetHeight / 96) * Number(grid.dataset.scrollRow);
});

// The appointment form's contact and Regarding searches, as you type: matches are added to the
// choices (contacts as boxes to tick, records as options), from the same JSON search endpoints
// as the email page's choosers. Without this file the Search buttons do the same on the server.
document.querySelectorAll("fieldset[data-find]").forEach((fieldset) => {
  const input = fieldset.querySelector("input[type=search]");
  const status = fieldset.querySelector("[data-status]");
  const boxes = fieldset.querySelector("[data-found]");
  const select = fieldset.querySelector("select");
  let timer = null;
  let latest = 0;
  const known = () => new Set(Array.from(fieldset.querySelectorAll("input[type=checkbox], option"), (el) => el.value));
  const add = (match) => {
    const text = match.detail ? `${match.label} · ${match.detail}` : match.label;
    if (select) {
      select.append(new Option(text, match.value));
      return;
    }
    const label = document.createElement("label");
    label.className = "choice";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "contacts";
    box.value = match.value;
    const span = document.createElement("span");
    span.textContent = text;
    label.append(box, " ", span);
    boxes.append(label);
  };
  const search = () => {
    const q = input.value.trim();
    const request = ++latest;
    if (!q) { status.textContent = ""; return; }
    fetch(`${fieldset.dataset.find}?q=${encodeURIComponent(q)}`, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => { if (!response.ok) throw new Error(String(response.status)); return response.json(); })
      .then((data) => {
        if (request !== latest) return;
        const seen = known();
        const fresh = data.results.filter((match) => !seen.has(match.value));
        fresh.forEach(add);
        status.textContent = data.results.length
          ? `${data.results.length} match${data.results.length === 1 ? "" : "es"}: ${select ? "choose one above" : "tick the ones to add"}.`
          : `Nothing matches “${q}”.`;
      })
      .catch(() => { if (request === latest) status.textContent = "Search failed. Press the Search button to try again."; });
  };
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 200); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); clearTimeout(timer); search(); }
  });
});
