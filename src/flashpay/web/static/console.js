// The operator console: payments per second and declines by reason, each member's net
// position, the audit log's checkpoints with each witness's cosignature. Refreshed every second.
"use strict";
(() => {
  const { t, api, $, el } = FP;
  const SVG = "http://www.w3.org/2000/svg";
  let timer = null;
  function chart(values) {
    const svg = $("#chart"); const max = Math.max(1, ...values); const w = 360 / values.length;
    svg.replaceChildren(...values.map((v, i) => {
      const r = document.createElementNS(SVG, "rect"); const h = (v / max) * 76;
      r.setAttribute("x", (i * w).toFixed(1)); r.setAttribute("width", Math.max(1, w - 1).toFixed(1));
      r.setAttribute("y", (78 - h).toFixed(1)); r.setAttribute("height", h.toFixed(1)); return r;
    }));
  }
  async function refresh() {
    const c = await api("GET", "/web/api/console");
    const last = c.per_second.slice(-10);
    $("#rate").textContent = `${(last.reduce((a, b) => a + b, 0) / last.length).toFixed(1)} /s · ${c.payments} / ${c.window_seconds} s`;
    chart(c.per_second);
    $("#declines").replaceChildren(...(c.declines.length ? c.declines.map((d) => el("li", { text: `${d.reason}: ${d.count}` })) : [el("li", { text: t("none") })]));
    $("#positions tbody").replaceChildren(...c.positions.map((p) => el("tr", {},
      el("td", { text: `${p.code} · ${p.name}` }), el("td", { text: `¥${p.net}` }), el("td", { text: `¥${p.income}` }))));
    $("#checkpoints").replaceChildren(...(c.checkpoints.length ? c.checkpoints.map((cp) => el("li", { "data-size": cp.tree_size },
      el("strong", { text: `${t("size")} ${cp.tree_size} · ${cp.final ? t("final") : t("pending")}` }),
      el("br"), el("code", { text: cp.root_hash.slice(0, 16) + "…" }),
      el("ul", {}, ...(cp.cosignatures.length ? cp.cosignatures.map((s) => el("li", { class: "cosig", text: `${t("cosignatures")}: ${s.witness} @ ${new Date(s.timestamp * 1000).toISOString()}` })) : [el("li", { text: `${t("cosignatures")}: ${t("none")}` })]))))
      : [el("li", { text: t("none") })]));
  }
  async function start() {
    await refresh(); $("#console").hidden = false;
    timer = setInterval(() => refresh().catch(() => null), 1000);
  }
  $("#logout").addEventListener("click", FP.logout);
  FP.onUnauthorized(() => { clearInterval(timer); $("#console").hidden = true; $("#key-form").hidden = false; });
  FP.keyLogin($("#key-form"), () => start());
  (async () => {
    try { await api("GET", "/web/api/console", undefined, { quiet401: true }); await start(); }
    catch { $("#key-form").hidden = false; }
    FP.ready();
  })();
})();
