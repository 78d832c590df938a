// Live updates: a page region marked data-live-src reloads itself when the ledger reports a change it shows.
// The server's /events stream (Server-Sent Events, fed by chaincode events) says only which command or gate
// changed; the region is then fetched again as the signed-in account, so it shows what that account may see.
(function () {
  "use strict";
  const region = document.querySelector("[data-live-src]");
  if (!region || !window.EventSource || !window.fetch) return;
  const params = new URLSearchParams({ topics: region.dataset.liveTopics || "dr,market" });
  if (region.dataset.liveCommand) params.set("command", region.dataset.liveCommand);
  if (region.dataset.liveGate) params.set("gate", region.dataset.liveGate);
  const status = document.createElement("p");
  status.className = "live-status";
  status.setAttribute("aria-live", "polite");
  status.textContent = "Live: this part of the page updates when the ledger changes.";
  region.before(status);

  let timer = null;
  let busy = false;
  async function refresh() {
    if (busy) { timer = setTimeout(refresh, 500); return; }
    busy = true;
    try {
      const response = await fetch(region.dataset.liveSrc, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) {
        region.innerHTML = await response.text();
        status.textContent = "Updated from the ledger at " + new Date().toLocaleTimeString() + ".";
        region.dispatchEvent(new CustomEvent("live:updated"));
      } else if (response.status === 401 || response.redirected) {
        status.textContent = "Signed out: reload the page to sign in again.";
      }
    } catch (error) {
      status.textContent = "Could not update: " + error.message;
    } finally {
      busy = false;
    }
  }

  const source = new EventSource("/events?" + params.toString());
  source.onmessage = function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);  // several events in a burst give one reload
  };
  source.onerror = function () {
    status.textContent = "Live updates paused; reconnecting…";
  };
  source.onopen = function () {
    status.textContent = "Live: this part of the page updates when the ledger changes.";
  };
  window.addEventListener("pagehide", function () { source.close(); });
})();
