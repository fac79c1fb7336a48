// Source of sources/backupmanager/static/app.js, copied by tools/build-assets.sh.
// The only script of the dashboard besides htmx (no inline script: strict CSP). Keeps a growing
// run log scrolled to its end unless the reader scrolled up to read it.
(function () {
  "use strict";
  var stick = true;
  document.addEventListener("scroll", function (event) {
    var log = event.target;
    if (log && log.id === "run-log") {
      stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    }
  }, true);
  function follow() {
    var log = document.getElementById("run-log");
    if (log && stick) { log.scrollTop = log.scrollHeight; }
  }
  document.addEventListener("DOMContentLoaded", follow);
  document.addEventListener("htmx:afterSettle", follow);
})();
