// Type-ahead for the choosers on the email page. Without this file the same forms work by
// submitting the search; with it, matches appear as you type, from the JSON search endpoints.
(function () {
  document.querySelectorAll("[data-chooser]").forEach(function (chooser) {
    var searchForm = chooser.querySelector(".chooser-search");
    var input = searchForm.querySelector("input[type=search]");
    var status = chooser.querySelector("[data-status]");
    var resultsForm = chooser.querySelector("[data-results-form]");
    var results = chooser.querySelector("[data-results]");
    var field = chooser.getAttribute("data-field");
    var saveLabel = resultsForm.querySelector("button[type=submit]").textContent;
    var timer = null;
    var latest = 0;

    function show(matches, q) {
      results.replaceChildren();
      matches.forEach(function (match) {
        var label = document.createElement("label");
        label.className = "choice";
        var radio = document.createElement("input");
        radio.type = "radio";
        radio.name = field;
        radio.value = match.value;
        radio.required = true;
        var text = document.createElement("span");
        var name = document.createElement("strong");
        name.textContent = match.label;
        var detail = document.createElement("span");
        detail.className = "muted";
        detail.textContent = match.detail;
        text.append(name, " ", detail);
        label.append(radio, text);
        results.append(label);
      });
      resultsForm.hidden = matches.length === 0;
      if (!q) status.textContent = "";
      else if (!matches.length) status.textContent = "Nothing matches “" + q + "”.";
      else status.textContent = matches.length + (matches.length === 1 ? " match" : " matches") +
        ". Pick one, then " + saveLabel + ".";
    }

    function search() {
      var q = input.value.trim();
      var request = ++latest;
      if (!q) { show([], ""); return; }
      var url = chooser.getAttribute("data-search-url") + "?q=" + encodeURIComponent(q);
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { if (!response.ok) throw new Error(response.status); return response.json(); })
        .then(function (data) { if (request === latest) show(data.results, q); })
        .catch(function () { if (request === latest) status.textContent = "Search failed. Press Search to try again."; });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, 200);
    });
    searchForm.addEventListener("submit", function (event) {
      event.preventDefault();
      clearTimeout(timer);
      search();
    });
  });
})();
