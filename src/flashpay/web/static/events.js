// The merchant's event feed (docs/reference/webhooks.md) read live by a page: the SSE stream
// through fetch (EventSource cannot be told to stop at our max_seconds and reconnect with our
// cursor), the session cookie as the credentials. On an end or a failure it reconnects with
// Last-Event-ID, so no event between two connections is missed. The POS page's "paid" comes
// from here, the same facts a merchant's webhook receives (issue 16), not from polling the order.
"use strict";
const FPEvents = (() => {
  const RECONNECT_MS = 1000;
  function follow(onEvent) {
    let last = null; let stopped = false; let controller = null;
    async function connect() {
      while (!stopped) {
        controller = new AbortController();
        try {
          const headers = last ? { "Last-Event-ID": last } : {};
          const response = await fetch("/v1/webhooks/events/stream?max_seconds=300", { headers, credentials: "same-origin", signal: controller.signal });
          if (response.status === 401 || response.status === 403) return;  // signed out: the page shows its login
          if (!response.ok || !response.body) throw new Error(String(response.status));
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value; let end;
            while ((end = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
              const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
              if (!data) continue;  // retry: or a keep-alive comment
              const event = JSON.parse(data);
              last = event.id;
              try { await onEvent(event); } catch (error) { console.error(error); }
            }
          }
        } catch (error) { if (stopped) return; console.warn(`event feed: ${error}`); }
        if (!stopped) await new Promise((r) => setTimeout(r, RECONNECT_MS));
      }
    }
    connect();
    return () => { stopped = true; if (controller) controller.abort(); };
  }
  return { follow };
})();
