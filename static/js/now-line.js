// The current-time line of the hour grids follows the clock while the page stays open: each
// minute it moves to the minute it is on the grid's own time zone (the viewer's, data-zone), and
// to the column of the new day after midnight (each column's data-date), or off the page. The
// server draws the line where it was when the page was made, so without this file it stays there.
"use strict";
(() => {
  const grids = document.querySelectorAll(".cal-grid[data-zone]");
  if (!grids.length) return;
  const ROW_MINUTES = 15; // a grid row is a quarter hour (calendarsync/layout.py, ROW)

  const wallClock = (zone) => {
    const parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      hourCycle: "h23",
    }).formatToParts(new Date()).forEach((part) => { parts[part.type] = part.value; });
    return { date: `${parts.year}-${parts.month}-${parts.day}`, minutes: Number(parts.hour) * 60 + Number(parts.minute) };
  };

  const makeLine = () => {
    const line = document.createElement("div");
    line.className = "cal-now";
    line.title = "Now";
    const label = document.createElement("span");
    label.className = "sr-only";
    label.textContent = "Now";
    line.append(label);
    return line;
  };

  const place = () => {
    grids.forEach((grid) => {
      let now;
      try {
        now = wallClock(grid.dataset.zone);
      } catch (error) {
        return; // a zone this browser does not know: the server's line stays as drawn
      }
      grid.querySelectorAll(".cal-col[data-date]").forEach((column) => {
        let line = column.querySelector(".cal-now");
        if (column.dataset.date !== now.date) {
          if (line) line.remove();
          return;
        }
        if (!line) line = column.appendChild(makeLine());
        line.className = "cal-now"; // the server's quarter-hour class gives way to the minute
        // A CSSOM property, which the Content-Security-Policy allows (an inline style attribute it does not).
        line.style.top = `calc(var(--q) * ${now.minutes / ROW_MINUTES})`;
      });
    });
  };

  const tick = () => {
    place();
    setTimeout(tick, 60000 - (Date.now() % 60000)); // on the minute, as the clock turns
  };
  tick();
  // Timers of a hidden tab are slowed down: put the line right as soon as it is seen again.
  document.addEventListener("visibilitychange", () => { if (!document.hidden) place(); });
})();
