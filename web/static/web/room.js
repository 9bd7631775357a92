// The war room, live: /ws/rooms/<id>/ brings new messages and incident changes; the form sends
// over the socket when it is open and posts as a plain form when it is not.
"use strict";

(function () {
  function start() {
    const section = document.getElementById("war-room");
    if (!section || !window.musterSocket) return;
    const list = document.getElementById("room-messages");
    const form = document.getElementById("room-form");
    const box = document.getElementById("room-body");
    const problem = document.getElementById("room-problem");
    let lastId = Number(section.dataset.lastId) || 0;
    let nonce = 0;
    const timers = {};

    function later(name, fn, ms) {
      clearTimeout(timers[name]);
      timers[name] = setTimeout(fn, ms);
    }

    function scrollDown() { list.scrollTop = list.scrollHeight; }

    function append(message) {
      if (document.getElementById(`m${message.id}`)) return;
      const item = document.createElement("li");
      item.id = `m${message.id}`;
      item.className = message.kind;
      item.dataset.id = message.id;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = message.author;
      const when = document.createElement("time");
      when.className = "when";
      when.dateTime = message.created_at;
      when.textContent = new Date(message.created_at).toISOString().slice(11, 19);
      const body = document.createElement("div");
      body.className = "body";
      body.innerHTML = message.html;  // rendered from Markdown and sanitized by the server
      item.append(who, " ", when, body);
      const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
      list.append(item);
      lastId = Math.max(lastId, message.id);
      if (stick) scrollDown();
    }

    // Incident changes: the badge at once, then the panels that show more of the incident.
    function changed(incident) {
      const badge = document.getElementById("incident-status");
      if (badge && incident.status) {
        badge.textContent = incident.status;
        badge.dataset.status = incident.status;
        badge.className = `badge status-${incident.status}`;
      }
      later("summary", () => refetch("incident-summary"), 300);
      later("timeline", refetchTimeline, 600);
      later("pages", () => refetch("pages"), 600);
    }

    function refetch(id) {
      const panel = document.getElementById(id);
      if (!panel || !panel.dataset.url || !window.htmx) return;
      window.htmx.ajax("GET", panel.dataset.url, { target: `#${id}`, swap: "outerHTML" });
    }

    function refetchTimeline() {
      const timeline = document.getElementById("timeline");
      if (!timeline || "paging" in timeline.dataset || !window.htmx) return;  // reading older ones
      window.htmx.ajax("GET", timeline.dataset.url, { target: "#timeline-entries", swap: "outerHTML" });
    }

    function showProblem(text) {
      if (!problem) return;
      problem.textContent = text || "";
      problem.hidden = !text;
    }

    const socket = window.musterSocket(`/ws/rooms/${section.dataset.roomId}/`, {
      onOpen(handle) { handle.send({ type: "hello", after: lastId || null }); },
      onMessage(event) {
        if (event.type === "message") {
          append(event.message);
          if (event.message.kind !== "chat") {
            // The bot's lines follow the timeline: pages sent, delivered, answered among them.
            later("timeline", refetchTimeline, 600);
            later("pages", () => refetch("pages"), 600);
          }
        } else if (event.type === "incident") {
          changed(event.incident || event);
        } else if (event.type === "error") {
          showProblem(event.error);
        } else if (event.type === "gap") {
          showProblem("Some older messages were skipped; reload the page to read them.");
        }
      },
    });

    form.addEventListener("submit", (event) => {
      if (!socket.open) return;  // no socket: the form posts, as without JavaScript
      event.preventDefault();
      const body = box.value;
      if (!body.trim()) { showProblem("Type something to say."); return; }
      showProblem("");
      nonce += 1;
      socket.send({ type: "say", body, nonce: `web-${nonce}` });
      box.value = "";
      box.focus();
    });

    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });

    scrollDown();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
