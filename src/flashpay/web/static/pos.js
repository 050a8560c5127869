// The merchant POS: a dynamic order's QR, seen paid live (the merchant's event feed, ≤ 1 s), refunds, the
// day's payments and totals by terminal, and collecting with the customer's payment code.
"use strict";
(() => {
  const { t, api, $, el, formData, showError } = FP;
  let currentOrder = null;  // {bill}: the order whose QR is on screen
  let unfollow = null;

  const beijingDay = () => new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
  async function start() {
    const [merchant, terminals] = await Promise.all([api("GET", "/v1/merchant"), api("GET", "/v1/merchant/terminals")]);
    $("#merchant-name").textContent = `${merchant.display_name} · ${merchant.city}`;
    const list = terminals.items || terminals;
    $("#terminal").replaceChildren(...list.map((x) => el("option", { value: x.code, text: x.code })));
    $("#pos").hidden = false;
    if (!unfollow) unfollow = FPEvents.follow(onEvent);
    await loadDay();
  }
  // One feed for the page: the order on screen turns paid on its payment.completed; any payment
  // or refund refreshes the day's list and totals.
  async function onEvent(event) {
    const data = event.data || {};
    if (event.type === "payment.completed" && currentOrder && data.bill_number === currentOrder.bill) {
      const status = $("#order-status");
      status.textContent = `${t("order_paid")} ¥${data.amount}`; status.className = "result ok";
      status.dataset.paid = "1"; status.dataset.event = event.id; window.fpOrderPaidAt = Date.now();
      currentOrder = null;
    }
    if (event.type.startsWith("payment.")) await loadDay();
  }
  async function loadDay() {
    const page = await api("GET", `/v1/merchant/payments?day=${beijingDay()}&limit=100`);
    const totals = new Map();
    const rows = page.items.map((p) => {
      const net = (Number(p.captured.replace(".", "")) - Number(p.refunded.replace(".", "")));
      if (p.status !== "declined") {
        const x = totals.get(p.terminal) || { n: 0, fen: 0 };
        x.n += 1; x.fen += net; totals.set(p.terminal, x);
      }
      const refundable = ["completed", "partially_refunded"].includes(p.status);
      const button = refundable ? el("button", { type: "button", class: "small", "data-refund": p.id, "data-amount": p.captured, text: t("refund") }) : "";
      return el("tr", { "data-payment": p.id, "data-bill": p.bill_number || "" },
        el("td", { text: p.bill_number || p.id.slice(-6) }), el("td", { text: p.terminal || "" }),
        el("td", { text: `¥${p.captured}` }), el("td", { text: p.status }), el("td", {}, button));
    });
    $("#payments tbody").replaceChildren(...rows);
    $("#totals tbody").replaceChildren(...[...totals].map(([term, x]) =>
      el("tr", {}, el("td", { text: term }), el("td", { text: x.n }), el("td", { text: `¥${(x.fen / 100).toFixed(2)}` }))));
  }
  $("#payments").addEventListener("click", async (event) => {
    const id = event.target.dataset.refund; if (!id) return;
    try { await api("POST", `/v1/merchant/payments/${id}/refunds`, { amount: event.target.dataset.amount }); FP.toast(t("refunded")); }
    catch (error) { FP.toast(`${error.code}: ${error.message}`); }
    await loadDay();
  });

  $("#order-form").addEventListener("submit", async (event) => {
    event.preventDefault(); const form = event.target; showError(form, null);
    currentOrder = null;
    const f = formData(form);
    try {
      const bill = `W${Date.now()}`;
      const order = await api("POST", "/v1/merchant/orders", { amount: f.amount.trim(), bill_number: bill, terminal: f.terminal });
      $("#order").hidden = false;
      $("#order-qr").src = `/v1/merchant/orders/${order.id}/qr?format=svg`;
      $("#order-amount").textContent = `¥${order.amount}`;
      const status = $("#order-status");
      status.textContent = t("waiting"); status.className = ""; delete status.dataset.paid;
      currentOrder = { bill };  // matched on our bill number: the order id is 63-bit, a JS number rounds it
    } catch (error) { showError(form, error); }
  });

  $("#collect-file").addEventListener("change", async (event) => {
    const file = event.target.files[0]; if (!file) return;
    try { $("#collect-form").code.value = (await api("POST", "/web/api/decode", file)).text; }
    catch (error) { showError($("#collect-form"), error); }
  });
  $("#collect-form").addEventListener("submit", async (event) => {
    event.preventDefault(); const form = event.target; showError(form, null);
    const f = formData(form); const result = $("#collect-result");
    try {
      const p = await api("POST", "/v1/merchant/payments", { code: f.code.replace(/\s/g, ""), amount: f.amount.trim(), terminal: $("#terminal").value || "T0001" });
      result.className = p.status === "declined" ? "result bad" : "result ok";
      result.textContent = p.status === "declined" ? `${t("declined")}: ${p.decline_reason}` : `${t("order_paid")} ¥${p.captured} · ${p.card || ""}`;
      form.reset(); await loadDay();
    } catch (error) { result.className = "result bad"; result.textContent = `${t("declined")}: ${error.code}`; }
  });
  $("#logout").addEventListener("click", FP.logout);

  FP.onUnauthorized(() => { if (unfollow) { unfollow(); unfollow = null; } $("#pos").hidden = true; $("#key-form").hidden = false; });
  FP.keyLogin($("#key-form"), () => start());
  (async () => {
    try { await api("GET", "/v1/merchant", undefined, { quiet401: true }); await start(); }
    catch { $("#key-form").hidden = false; }
    FP.ready();
  })();
})();
