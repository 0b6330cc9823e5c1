(function () {
  // "Shared with" matters only for a private calendar: show it only then.
  var shared = document.getElementById("shared-with");
  if (shared) {
    var radios = document.querySelectorAll("input[name='sync-calendar_privacy']");
    var update = function () {
      var selected = document.querySelector("input[name='sync-calendar_privacy']:checked");
      shared.hidden = !selected || selected.value !== "private";
    };
    radios.forEach(function (radio) { radio.addEventListener("change", update); });
    update();
  }

  // Sync Aspire Folder is part of Sync Email: off (and disabled) while Sync Email is off, and
  // back as it was when Sync Email is ticked again. The server applies the same rule.
  var email = document.getElementById("id_sync-sync_email");
  var folder = document.getElementById("id_sync-sync_aspire_folder");
  if (email && folder) {
    var wanted = folder.checked;
    folder.addEventListener("change", function () { wanted = folder.checked; });
    var follow = function () {
      folder.disabled = !email.checked;
      folder.checked = email.checked && wanted;
    };
    email.addEventListener("change", follow);
    follow();
  }
})();
