// "Shared with" matters only for a private calendar: show it only then.
(function () {
  var shared = document.getElementById("shared-with");
  if (!shared) return;
  var radios = document.querySelectorAll("input[name='sync-calendar_privacy']");
  function update() {
    var selected = document.querySelector("input[name='sync-calendar_privacy']:checked");
    // A choice that was refused stays in sight, whatever the privacy.
    shared.hidden = !shared.hasAttribute("data-errors") && (!selected || selected.value !== "private");
  }
  radios.forEach(function (radio) { radio.addEventListener("change", update); });
  update();
})();
