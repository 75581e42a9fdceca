// The console works without this script; with it, times show the reader's
// local time beside UTC, and the Overview stays live (every 5 seconds,
// without reloading the page or losing its scroll) until paused.
(function () {
  "use strict";
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      if (t.dataset.local) return;
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d)) return;
      t.dataset.local = "1";
      var s = document.createElement("span");
      s.className = "local";
      s.textContent = " (" + d.toLocaleString() + " local)";
      t.after(s);
    });
  }
  localTimes(document);

  var live = document.getElementById("live");
  var button = document.getElementById("live-toggle");
  if (!live || !button) return;
  var paused = sessionStorage.getItem("veil-live-paused") === "1";
  function label() {
    button.textContent = paused ? "Resume live updates" : "Pause live updates";
    button.setAttribute("aria-pressed", paused ? "true" : "false");
    document.getElementById("live-state").textContent = paused ? "Live updates are paused." : "Live: updated every 5 seconds.";
  }
  button.hidden = false;
  label();
  button.addEventListener("click", function () {
    paused = !paused;
    sessionStorage.setItem("veil-live-paused", paused ? "1" : "0");
    label();
    if (!paused) tick();
  });
  function tick() {
    if (paused) return;
    fetch(location.pathname + location.search, { credentials: "same-origin", redirect: "manual" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html || paused) return;
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (!next) return;
        live.replaceChildren.apply(live, Array.prototype.map.call(next.childNodes, function (n) { return document.importNode(n, true); }));
        localTimes(live);
      })
      .catch(function () {});
  }
  setInterval(tick, 5000);
})();
