// Muster's small shared script. Pages work without it; it adds live updates and conveniences.
"use strict";

// Copy buttons: <button data-copy="#id-of-input-or-element">Copy</button>
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const text = source ? (source.value ?? source.textContent) : "";
  navigator.clipboard?.writeText(text.trim()).then(
    () => { button.textContent = "Copied"; },
    () => { source?.select?.(); },
  );
});

// Open a websocket that reconnects with backoff. `onMessage(event)` gets each parsed JSON
// event; `onOpen(socket)` runs on every (re)connect. Returns a handle with send(obj).
window.musterSocket = function musterSocket(path, { onMessage, onOpen } = {}) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let socket = null;
  let delay = 500;
  const handle = {
    send(obj) { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(obj)); },
    get open() { return socket && socket.readyState === WebSocket.OPEN; },
  };
  function connect() {
    socket = new WebSocket(`${scheme}//${location.host}${path}`);
    socket.addEventListener("open", () => { delay = 500; onOpen?.(handle); });
    socket.addEventListener("message", (e) => { try { onMessage?.(JSON.parse(e.data)); } catch (err) { console.error(err); } });
    socket.addEventListener("close", (e) => {
      if (e.code >= 4400 && e.code < 4500) return;  // refused (4401/4403/4404): do not retry
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    });
  }
  connect();
  return handle;
};
