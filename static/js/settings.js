(function () {
  // "Shared with" matters only for a private calendar: show it only then.
  var shared = document.getElementById("shared-with");
  if (shared) {
    var radios = document.querySelectorAll("input[name='sync-calendar_privacy']");
    var update = function () {
      var selected = document.querySelector("input[name='sync-calendar_privacy']:checked");
      // A choice that was refused stays in sight, whatever the privacy.
      shared.hidden = !shared.hasAttribute("data-errors") && (!selected || selected.value !== "private");
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

  // The time zone this device is set to, suggested at the top of the list. Browsers may name it
  // by an older alias (Chrome says Asia/Calcutta for Asia/Kolkata), so zones are compared through
  // Intl, which resolves both names to the same zone.
  var zones = document.getElementById("id_profile-time_zone");
  var here = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zones && here) {
    var resolved = function (zone) {
      try { return new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone; }
      catch (error) { return null; }
    };
    var options = Array.prototype.slice.call(zones.options);
    var match = options.filter(function (option) { return option.value === here; })[0];
    if (!match) {
      var target = resolved(here);
      match = options.filter(function (option) { return resolved(option.value) === target; })[0];
    }
    if (match) {
      var region = match.parentNode.tagName === "OPTGROUP" ? match.parentNode.label + " / " : "";
      var suggested = document.createElement("optgroup");
      suggested.label = "This device's time zone";
      suggested.appendChild(new Option(region + match.text, match.value));
      zones.insertBefore(suggested, zones.firstChild);
    }
  }
})();
