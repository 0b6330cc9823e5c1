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
