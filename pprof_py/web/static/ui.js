// The menu bar shared by every view: menus, the search box, and Refine
// (Focus / Ignore / Hide / Show / Show from on the search expression).
// Views register with pprofUI.onSearch to highlight what the search
// matches, and call pprofUI.setSearch when nodes are selected.
(function () {
  "use strict";
  var search = document.getElementById("search");
  var listeners = [];

  function flash(text) {
    var box = document.getElementById("flash");
    if (!box) {
      box = document.createElement("div");
      box.id = "flash";
      document.body.appendChild(box);
    }
    box.textContent = text;
    box.style.display = "block";
    clearTimeout(flash.timer);
    flash.timer = setTimeout(function () { box.style.display = "none"; }, 3000);
  }

  // The search box as a RegExp (null when empty or not a valid expression).
  function regex() {
    var text = search.value;
    search.classList.remove("invalid");
    if (!text) { return null; }
    try { return new RegExp(text); } catch (err) { search.classList.add("invalid"); return null; }
  }
  // The search text is part of the URL (q=) on the views where the search
  // box highlights (graph, top, flame graph), so a view can be bookmarked
  // as it is seen; on Peek, Source and Disassemble the search is their f=.
  var searchIsFocus = /\/ui\/(peek|source|disasm)$/.test(window.location.pathname);
  function keepInURL() {
    if (searchIsFocus) { return; }
    var url = new URL(window.location.href);
    if (search.value) { url.searchParams.set("q", search.value); } else { url.searchParams.delete("q"); }
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  function notify(reason) {
    var re = regex();
    for (var i = 0; i < listeners.length; i++) { listeners[i](re, reason); }
    keepInURL();
  }
  function setSearch(text) {
    search.value = text;
    notify("select");
  }
  function withParam(href, param, value) {
    var url = new URL(href, window.location.href);
    if (value) { url.searchParams.set(param, value); } else { url.searchParams.delete(param); }
    return url.toString();
  }

  // Menus open on click and close on a click elsewhere.
  document.addEventListener("click", function (evt) {
    var title = evt.target.closest(".menu-title");
    var menus = document.querySelectorAll(".menu");
    for (var i = 0; i < menus.length; i++) {
      if (!title || menus[i] !== title.parentNode) { menus[i].classList.remove("open"); }
    }
    if (title) { title.parentNode.classList.toggle("open"); }
  });

  // Refine: put the search expression into the URL parameter.
  var refine = document.querySelectorAll("#refine-menu a[data-param]");
  for (var i = 0; i < refine.length; i++) {
    refine[i].addEventListener("click", function (evt) {
      evt.preventDefault();
      if (!search.value) { flash("Type a regular expression in the search box, or select nodes, first"); return; }
      if (!regex()) { flash("The search box does not hold a valid regular expression"); return; }
      window.location.href = withParam(window.location.href, this.getAttribute("data-param"), search.value);
    });
  }
  // Peek, Source and Disassemble list what the search box names.
  var uses = document.querySelectorAll("#view-menu a[data-uses-search]");
  for (var j = 0; j < uses.length; j++) {
    uses[j].addEventListener("click", function (evt) {
      if (search.value && regex()) {
        evt.preventDefault();
        window.location.href = withParam(this.href, "f", search.value);
      }
    });
  }
  search.addEventListener("input", function () { notify("type"); });
  search.addEventListener("keydown", function (evt) {
    if (evt.key !== "Enter") { return; }
    // On the views that list a regular expression's matches, Enter shows them.
    if (/\/ui\/(peek|source|disasm)$/.test(window.location.pathname) && regex()) {
      window.location.href = withParam(window.location.href, "f", search.value);
    }
  });
  document.getElementById("search-reset").addEventListener("click", function () {
    search.value = "";
    notify("reset");
  });

  // After the view's script has registered: apply a q= from the URL.
  document.addEventListener("DOMContentLoaded", function () {
    var q = new URL(window.location.href).searchParams.get("q");
    if (q && !searchIsFocus) {
      search.value = q;
      notify("url");
    }
  });

  window.pprofUI = {
    onSearch: function (fn) { listeners.push(fn); },
    setSearch: setSearch,
    regex: regex,
    flash: flash
  };
})();
