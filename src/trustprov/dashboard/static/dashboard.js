// Live updates: the server sends the rendered (escaped) fragment of the page on every change
// over server-sent events; the browser reconnects by itself when the connection drops.
"use strict";
(function () {
  const live = document.getElementById("live");
  const status = document.getElementById("status");
  const source = new EventSource("/events");
  source.addEventListener("open", function () {
    status.textContent = "live";
    status.dataset.state = "live";
  });
  source.addEventListener("error", function () {
    status.textContent = "reconnecting";
    status.dataset.state = "lost";
  });
  source.addEventListener("update", function (event) {
    live.innerHTML = event.data;
    status.textContent = "live";
    status.dataset.state = "live";
  });
})();
