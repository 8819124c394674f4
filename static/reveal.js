// The page that shows a revealed value, once. Everything here is optional:
// without scripts the page still closes itself (meta refresh) and the value
// can be selected and copied by hand.
(function () {
  "use strict";
  var page = document.getElementById("reveal");
  if (!page) { return; }
  var closeTo = page.getAttribute("data-close-to") || "/";
  // A page brought back from the browser's back/forward cache is not shown
  // again: go where the page would have gone when it closed.
  window.addEventListener("pageshow", function (e) {
    if (e.persisted) { window.location.replace(closeTo); }
  });
  // The time left, counted down.
  var left = document.getElementById("reveal-seconds");
  if (left) {
    var secs = parseInt(left.textContent, 10);
    var tick = window.setInterval(function () {
      secs -= 1;
      if (secs <= 0) { window.clearInterval(tick); window.location.replace(closeTo); return; }
      left.textContent = String(secs);
    }, 1000);
  }
  // Copy the value (without the spaces between its groups).
  var copy = document.getElementById("reveal-copy");
  var value = document.getElementById("revealed-value");
  if (copy && value && navigator.clipboard) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      navigator.clipboard.writeText(value.textContent.replace(/\s+/g, "")).then(function () {
        copy.textContent = "Copied";
      });
    });
  }
})();
