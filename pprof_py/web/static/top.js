// The top table: a click on a row selects its function (again: unselects);
// the selection goes into the search box for Refine; typing in the search
// box highlights the matching rows.
(function () {
  "use strict";
  var rows = document.querySelectorAll("#toptable tbody tr");
  var selected = [];
  function show() {
    for (var i = 0; i < rows.length; i++) {
      rows[i].classList.toggle("selected", selected.indexOf(rows[i].getAttribute("data-re")) >= 0);
    }
    window.pprofUI.setSearch(selected.join("|"));
  }
  for (var i = 0; i < rows.length; i++) {
    rows[i].addEventListener("click", function () {
      var re = this.getAttribute("data-re");
      var at = selected.indexOf(re);
      if (at >= 0) { selected.splice(at, 1); } else { selected.push(re); }
      show();
    });
  }
  window.pprofUI.onSearch(function (re, reason) {
    if (reason === "reset") { selected = []; show(); }
    for (var i = 0; i < rows.length; i++) {
      var name = rows[i].getAttribute("data-name");
      rows[i].classList.toggle("hl", !!(re && reason !== "select" && re.test(name)));
    }
  });
})();
