// wtflow ui: pages of runs still going refresh themselves; a running node's output streams in.
(function () {
  "use strict";
  const POLL_MS = 1500;

  // A [data-live] region is fetched again until the server marks it final, keeping which
  // tree nodes the reader opened or closed.
  function poll(region) {
    if (region.dataset.final === "1") return;
    setTimeout(async function () {
      let text;
      try {
        const response = await fetch(location.href, { headers: { "X-Wtflow-Fragment": "1" } });
        if (!response.ok) throw new Error(response.statusText);
        text = await response.text();
      } catch (error) {
        poll(region);
        return;
      }
      const fresh = new DOMParser().parseFromString(text, "text/html").querySelector("[data-live]");
      if (!fresh) { poll(region); return; }
      if (region.dataset.reload && fresh.dataset.reload !== region.dataset.reload) {
        location.reload(); // e.g. the node started another attempt: its page changes whole
        return;
      }
      const opened = new Map();
      region.querySelectorAll("details.node").forEach(function (d) { opened.set(d.id, d.open); });
      fresh.querySelectorAll("details.node").forEach(function (d) {
        if (opened.has(d.id)) d.open = opened.get(d.id);
      });
      region.replaceWith(fresh);
      poll(fresh);
    }, Number(region.dataset.poll) || POLL_MS);
  }

  // A [data-sse] element names the event stream whose output goes into the <pre id=out-...> panes.
  function follow(source) {
    const events = new EventSource(source.dataset.sse);
    events.addEventListener("output", function (event) {
      const chunk = JSON.parse(event.data);
      const pane = document.getElementById("out-" + chunk.stream);
      if (!pane) return;
      const atBottom = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 4;
      pane.textContent += chunk.text;
      if (atBottom) pane.scrollTop = pane.scrollHeight;
    });
    events.addEventListener("end", function () {
      events.close();
      source.dataset.ended = "1";
    });
  }

  document.querySelectorAll("[data-live]").forEach(poll);
  document.querySelectorAll("[data-sse]").forEach(follow);
})();
