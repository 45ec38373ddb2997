// Source listings: a click on a line with instructions shows or hides them.
document.addEventListener("click", function (evt) {
  "use strict";
  var row = evt.target.closest("tr.line.hot");
  if (!row) { return; }
  var asm = row.nextElementSibling;
  if (asm && asm.classList.contains("asm")) { asm.classList.toggle("open"); }
});
