// The wallet page: log in or register, cards and balances, bind with OTP, the payment code
// (refreshed before it expires and after it is used, with a live "paid" notice), scan-to-pay
// with the discount, transfers, the theme month's discounts, history and limits.
"use strict";
(() => {
  const { t, api, $, $$, el, formData, showError } = FP;
  const CODE_REFRESH_MS = 50_000; // codes live 60 s: a new one 10 s before
  const PAID_POLL_MS = 300;       // the live "paid" notice: ≤ 1 s after the merchant takes it
  let cards = [];
  let payTimers = [];
  let scanned = null;

  const screens = () => $$("[data-screen]");
  function show(id) {
    for (const s of screens()) s.hidden = s.id !== id;
    $("#tabs").hidden = id === "auth";
    for (const a of $$("#tabs a")) {
      if (a.getAttribute("href") === `#${id}`) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    stopPay();
    const enter = { home: loadHome, pay: startPay, discounts: loadDiscounts, history: loadHistory, limits: () => null, scan: () => null, transfer: fillCardSelects };
    return (enter[id] || (() => null))();
  }
  function route() { return show((location.hash || "#home").slice(1)); }

  FP.onUnauthorized(() => {
    $("#auth-note").hidden = false;
    location.hash = "";
    show("auth");
  });

  // -- log in, register ----------------------------------------------------------------------
  for (const b of $$("[data-toggle]")) {
    b.addEventListener("click", () => {
      $("#login-form").hidden = b.dataset.toggle !== "login-form";
      $("#register-form").hidden = b.dataset.toggle !== "register-form";
    });
  }
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault(); const form = event.target; showError(form, null);
    try {
      await api("POST", "/web/session", formData(form), { quiet401: true });
      form.reset(); $("#auth-note").hidden = true; location.hash = "#home"; await route();
    } catch (error) { showError(form, error); }
  });
  $("#register-form").addEventListener("submit", async (event) => {
    event.preventDefault(); const form = event.target; showError(form, null);
    const f = formData(form);
    try {
      await api("POST", "/v1/users", { phone: f.phone, name: f.name, id_number: f.id_number, password: f.password });
      await api("POST", "/web/session", { phone: f.phone, password: f.password });
      await api("PUT", "/v1/me/pin", { pin: f.pin, password: f.password });
      form.reset(); location.hash = "#home"; await route();
    } catch (error) { showError(form, error); }
  });
  $("#logout").addEventListener("click", FP.logout);

  // -- cards ---------------------------------------------------------------------------------
  async function loadCards() {
    cards = (await api("GET", "/v1/cards")).items;
    fillCardSelects();
    return cards;
  }
  function fillCardSelects() {
    for (const select of $$(".card-select")) {
      const keep = select.value;
      select.replaceChildren(...cards.map((c) => el("option", { value: c.id, text: `${c.issuer_name} ${c.card_type} ···${c.last4}` })));
      const def = cards.find((c) => c.is_default);
      select.value = keep || (def ? String(def.id) : "");
    }
  }
  async function loadHome() {
    await loadCards();
    const balances = await Promise.all(cards.map((c) => api("GET", `/v1/cards/${c.id}/balance`)));
    $("#card-list").replaceChildren(...cards.map((c, i) => {
      const b = balances[i]; const dl = el("dl");
      const row = (k, v) => { if (v !== null && v !== undefined) dl.append(el("dt", { text: t(k) }), el("dd", { text: `¥${v}` })); };
      if (b.card_type === "credit") { row("credit_limit", b.credit_limit); row("available", b.available); row("outstanding", b.outstanding); }
      else row("balance", b.available);
      return el("li", { "data-card": c.id }, el("strong", { text: `${c.issuer_name} · ${c.masked_number}${c.is_default ? ` (${t("default")})` : ""}` }), dl);
    }));
  }
  let bindingId = null;
  $("#bind-form").addEventListener("submit", async (event) => {
    event.preventDefault(); const form = event.target; showError(form, null);
    const f = formData(form); const body = { card_number: f.card_number.replace(/\s/g, ""), expiry: f.expiry };
    if (f.cvv) body.cvv = f.cvv;
    try {
      bindingId = (await api("POST", "/v1/cards/bindings", body)).binding_id;
      form.reset(); $("#otp-form").hidden = false; $("#otp-form").otp.focus();
    } catch (error) { showError(form, error); }
  });
  $("#otp-form").addEventListener("submit", async (event) => {
    event.preventDefault(); const form = event.target; showError(form, null);
    try {
      await api("POST", `/v1/cards/bindings/${bindingId}/confirm`, { otp: form.otp.value.trim() });
      form.reset(); form.hidden = true; await loadHome();
    } catch (error) { showError(form, error); }
  });

  // -- pay: the payment code -----------------------------------------------------------------
  function stopPay() { payTimers.forEach(clearInterval); payTimers.forEach(clearTimeout); payTimers = []; }
  async function latestPaymentId() {
    const page = await api("GET", "/v1/payments?limit=1");
    return page.items.length ? page.items[0].id : null;
  }
  async function startPay() {
    if (!cards.length) await loadCards();
    const cardId = $("#pay-card").value;
    if (!cardId) return;
    // The last payment before this code, read alongside: a newer one is this code's.
    const [code, seen] = await Promise.all([api("POST", `/v1/cards/${cardId}/payment-code`), latestPaymentId()]);
    const [qr, bar] = await Promise.all([FP.svgUrl(code.qr_payload, false), FP.svgUrl(code.numeric, true)]);
    for (const img of [$("#pay-qr"), $("#pay-barcode")]) if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    $("#pay-qr").src = qr; $("#pay-barcode").src = bar;
    $("#pay-digits").textContent = code.numeric.replace(/(\d{4})(?=\d)/g, "$1 ");
    $("#pay-digits").dataset.code = code.numeric;
    const shownAt = Date.now();
    const expiresAt = new Date(code.expires_at).getTime();
    const refreshAt = Math.min(shownAt + CODE_REFRESH_MS, expiresAt - 5000);
    payTimers.push(setInterval(() => {
      $("#pay-countdown").textContent = Math.max(0, Math.round((refreshAt - Date.now()) / 1000));
    }, 500));
    payTimers.push(setTimeout(() => { stopPay(); startPay(); }, Math.max(1000, refreshAt - Date.now())));
    let polling = false;
    payTimers.push(setInterval(async () => {
      if (polling) return; polling = true;
      try {
        const page = await api("GET", "/v1/payments?limit=1");
        const p = page.items[0];
        if (p && p.id !== seen && p.kind === "cpm") {
          const notice = $("#paid-notice");
          notice.textContent = t("paid_at", { amount: p.captured !== "0.00" ? p.captured : p.amount, merchant: p.merchant || "" });
          notice.hidden = false; notice.dataset.payment = p.id;
          window.fpPaidNoticeAt = Date.now();
          stopPay(); startPay(); // the code was used: show a fresh one
        }
      } finally { polling = false; }
    }, PAID_POLL_MS));
  }
  $("#pay-card").addEventListener("change", () => { stopPay(); startPay(); });

  // -- scan ----------------------------------------------------------------------------------
  async function readPayload(text) {
    $("#scan-error").textContent = ""; $("#scan-result").textContent = "";
    try {
      scanned = await api("POST", "/web/api/scan", { payload: text.trim() });
      scanned.payload = text.trim();
    } catch (error) { $("#scan-error").textContent = `${error.code}: ${error.message}`; return; }
    if (!cards.length) await loadCards();
    const form = $("#scan-pay");
    form.hidden = false;
    $("#scan-merchant").textContent = `${scanned.merchant} · ${scanned.city}`;
    form.amount.value = scanned.amount || "";
    form.amount.readOnly = Boolean(scanned.amount);
    fillCardSelects();
    await quote();
  }
  async function quote() {
    const form = $("#scan-pay");
    const amount = form.amount.value.trim();
    if (!scanned || !amount) { $("#scan-discount").textContent = "–"; $("#scan-topay").textContent = "–"; return; }
    try {
      const q = await api("GET", `/v1/promotions/quote?merchant_id=${scanned.merchant_id}&amount=${encodeURIComponent(amount)}&card_id=${form.card.value}`);
      const names = (q.applied || []).map((a) => a.name || a.campaign_name || "").filter(Boolean).join(", ");
      $("#scan-discount").dataset.discount = q.discount || "0.00";
      $("#scan-discount").textContent = q.discount && q.discount !== "0.00" ? `−¥${q.discount}${names ? ` (${names})` : ""}` : t("no_discount");
      $("#scan-topay").textContent = `¥${q.pay}`;
    } catch (error) { $("#scan-discount").textContent = t("no_discount"); $("#scan-topay").textContent = `¥${amount}`; }
  }
  $("#scan-pay").amount.addEventListener("change", quote);
  $("#scan-pay").card.addEventListener("change", quote);
  $("#scan-read").addEventListener("click", () => readPayload($("#scan-text").value));
  $("#scan-file").addEventListener("change", async (event) => {
    const file = event.target.files[0]; if (!file) return;
    try { const { text } = await api("POST", "/web/api/decode", file); $("#scan-text").value = text; await readPayload(text); }
    catch (error) { $("#scan-error").textContent = `${error.code}: ${error.message}`; }
  });
  $("#camera-start").addEventListener("click", async () => {
    // The camera where the browser allows it: frames go to the server's decoder (zxing-cpp)
    // unless the browser has its own BarcodeDetector.
    const video = $("#camera");
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      video.srcObject = stream; video.hidden = false; await video.play();
      const detector = "BarcodeDetector" in window ? new BarcodeDetector({ formats: ["qr_code"] }) : null;
      const canvas = document.createElement("canvas");
      const timer = setInterval(async () => {
        let text = null;
        if (detector) { const found = await detector.detect(video); text = found.length ? found[0].rawValue : null; }
        else {
          canvas.width = video.videoWidth; canvas.height = video.videoHeight;
          canvas.getContext("2d").drawImage(video, 0, 0);
          const blob = await new Promise((ok) => canvas.toBlob(ok, "image/png"));
          try { text = (await api("POST", "/web/api/decode", blob)).text; } catch { text = null; }
        }
        if (text) { clearInterval(timer); stream.getTracks().forEach((tr) => tr.stop()); video.hidden = true; $("#scan-text").value = text; readPayload(text); }
      }, 700);
    } catch (error) { $("#scan-error").textContent = String(error.message || error); }
  });
  $("#scan-pay").addEventListener("submit", async (event) => {
    event.preventDefault(); const form = event.target; showError(form, null);
    const body = { payload: scanned.payload, card_id: Number(form.card.value) };
    if (!scanned.amount) body.amount = form.amount.value.trim();
    if (form.pin.value) body.pin = form.pin.value;
    const result = $("#scan-result");
    try {
      const p = await api("POST", "/v1/payments/qr", body);
      form.pin.value = "";
      if (p.status === "declined") { result.className = "result bad"; result.textContent = `${t("declined")}: ${p.decline_reason}`; return; }
      result.className = "result ok";
      // What was applied, from the payment itself (not the quote): original, discount, campaigns.
      result.dataset.discount = p.discount;
      const parts = [`${t("result_ok")} ¥${p.paid} · ${p.merchant}`];
      if (p.discount_minor > 0) parts.push(`${t("original_amount")} ¥${p.amount} · ${t("discount")} −¥${p.discount} · ${FP.promotionsText(p.promotions)}`);
      result.replaceChildren(el("span", { class: "result-text", text: `${parts.join(" · ")} · ` }), el("a", { href: `/wallet/receipts/${p.id}`, text: t("receipt") }));
      form.hidden = true; scanned = null;
    } catch (error) { result.className = "result bad"; result.textContent = `${t("declined")}: ${error.code}`; }
  });

  // -- transfer ------------------------------------------------------------------------------
  $("#transfer-form").addEventListener("submit", async (event) => {
    event.preventDefault(); const form = event.target; showError(form, null);
    const f = formData(form);
    const body = { from_card_id: Number(f.card), amount: f.amount.trim(), pin: f.pin };
    if (f.to_card_number) body.to_card_number = f.to_card_number.replace(/\s/g, ""); else body.to_phone = f.to_phone.trim();
    if (f.memo) body.memo = f.memo;
    const result = $("#transfer-result");
    try {
      const tr = await api("POST", "/v1/transfers", body);
      form.pin.value = "";
      result.className = tr.status === "completed" ? "result ok" : "result bad";
      result.textContent = tr.status === "completed" ? `${t("sent")} ¥${tr.amount} → ${tr.recipient}` : `${t("declined")}: ${tr.decline_reason}`;
    } catch (error) { showError(form, error); }
  });

  // -- discounts by scene, history, limits ---------------------------------------------------
  async function loadDiscounts() {
    // One inquiry per scene (the scenes come with the page): what runs there now, and whether
    // it applies to one of my cards.
    const scenes = JSON.parse($("#discounts").dataset.scenes);
    const lists = await Promise.all(scenes.map((s) => api("GET", `/v1/promotions/discounts?scene=${s}`)));
    const zh = document.documentElement.lang.startsWith("zh");
    const out = [];
    scenes.forEach((scene, i) => {
      if (!lists[i].length) return;
      out.push(el("h3", { text: t(`scene_${scene}`) }), el("ul", { class: "list" }, ...lists[i].map((d) =>
        el("li", { "data-campaign": d.campaign_id, text: `${d.name} — ${zh ? d.description_zh : d.description_en} · ${d.why_not ? t("not_applicable") : t("applies")}` }))));
    });
    $("#discount-list").replaceChildren(...(out.length ? out : [el("p", { text: t("none") })]));
  }
  async function loadHistory() {
    const page = await api("GET", "/v1/payments?limit=50");
    $("#history-list").replaceChildren(...page.items.map((p) => el("li", {},
      el("a", { href: `/wallet/receipts/${p.id}`, text: `${p.merchant || ""} ¥${p.amount}` }),
      ` · ${p.status}${p.refunded !== "0.00" ? ` (${t("refunded")} ¥${p.refunded})` : ""} · ${new Date(p.created_at).toLocaleString()}`)));
  }
  $("#limits-form").addEventListener("submit", async (event) => {
    event.preventDefault(); const form = event.target; showError(form, null);
    try { await api("PUT", "/v1/me/limits", formData(form)); form.password.value = ""; FP.toast(t("saved")); }
    catch (error) { showError(form, error); }
  });

  window.addEventListener("hashchange", route);
  (async () => {
    try { await api("GET", "/v1/me", undefined, { quiet401: true }); await route(); }
    catch (error) {
      // A cookie the server no longer accepts (expired, logged out) is invalid_credentials;
      // no cookie at all is authentication_required.
      $("#auth-note").hidden = error.code !== "invalid_credentials";
      show("auth");
    }
    FP.ready();
  })();
})();
