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
  // The time left, counted down. (Without scripts a meta refresh in a
  // noscript element closes the page instead.)
  var left = document.getElementById("reveal-seconds");
  var secs = left ? parseInt(left.textContent, 10) : 0;
  if (left) {
    var tick = window.setInterval(function () {
      secs -= 1;
      if (secs <= 0) { window.clearInterval(tick); window.location.replace(closeTo); return; }
      left.textContent = String(secs);
    }, 1000);
  }
  // "Keep it open": the server records it and answers the new deadline (the
  // value is not sent again); a bounded number of times.
  var extend = document.getElementById("reveal-extend");
  var status = document.getElementById("reveal-extend-status");
  if (extend && left && window.fetch) {
    extend.hidden = parseInt(extend.getAttribute("data-left") || "0", 10) <= 0;
    extend.addEventListener("click", function () {
      extend.disabled = true;
      var body = "csrf_token=" + encodeURIComponent(extend.getAttribute("data-csrf") || "");
      window.fetch(extend.getAttribute("data-extend"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: body
      }).then(function (r) {
        if (!r.ok) { throw new Error(String(r.status)); }
        return r.json();
      }).then(function (answer) {
        secs = answer.seconds;
        left.textContent = String(secs);
        if (status) { status.textContent = "Kept open: " + secs + " seconds left."; }
        extend.disabled = false;
        extend.hidden = answer.left <= 0;
      }).catch(function () {
        if (status) { status.textContent = "It cannot be kept open longer."; }
        extend.hidden = true;
      });
    });
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
