// Source of sources/backupmanager/static/app.js, copied by tools/build-assets.sh.
// The only script of the dashboard besides htmx (no inline script: strict CSP). Keeps a growing
// run log scrolled to its end unless the reader scrolled up to read it, and marks a restore plan
// out of date as soon as the options above it change (the server refuses it anyway).
(function () {
  "use strict";
  var stick = true;
  var optionsChanged = false;
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
  // "Restore now" runs the plan shown: once an option changes it waits for a new plan.
  function markStalePlan() {
    var plan = document.getElementById("restore-plan");
    if (!optionsChanged || !plan) { return; }
    plan.setAttribute("data-stale", "true");
    var go = document.getElementById("plan-go");
    var button = document.getElementById("restore-now");
    var notice = document.getElementById("plan-stale");
    if (go) { go.hidden = true; }
    if (button) { button.disabled = true; }
    if (notice) { notice.hidden = false; }
  }
  function optionChanged(event) {
    var form = document.getElementById("restore-form");
    if (form && event.target && event.target.form === form) {
      optionsChanged = true;
      markStalePlan();
    }
  }
  document.addEventListener("input", optionChanged, true);
  document.addEventListener("change", optionChanged, true);
  document.addEventListener("DOMContentLoaded", follow);
  document.addEventListener("htmx:afterSettle", function () { follow(); markStalePlan(); });
})();
