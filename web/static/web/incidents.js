// The incidents list, live: on each change announced on /ws/incidents/, re-fetch the list as
// filtered now (the same URL, as an htmx request that answers with the table alone).
"use strict";

(function () {
  const DEBOUNCE_MS = 300;
  let timer = null;

  function refresh() {
    timer = null;
    const results = document.getElementById("incident-results");
    if (!results || !window.htmx) return;
    // Not while a row's button is being answered: its own swap would fight this one.
    if (results.querySelector(".htmx-request")) { schedule(); return; }
    window.htmx.ajax("GET", results.dataset.url || location.pathname + location.search, {
      target: "#incident-results",
      swap: "outerHTML",
    });
  }

  function schedule() {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(refresh, DEBOUNCE_MS);
  }

  function start() {
    if (!document.getElementById("incident-results")) return;
    window.musterSocket("/ws/incidents/", {
      onOpen() {
        // Changes made between rendering the page and joining the feed (or while it was
        // reconnecting) were not announced to this page: catch up once.
        schedule();
      },
      onMessage(event) {
        if (event.type === "incident") schedule();
      },
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
