// flashpay pages: what every page shares. Calls the /v1 API with the session cookie (sent by
// the browser, HttpOnly), the CSRF token (double submit: the fp_csrf cookie copied into the
// X-CSRF-Token header) and an Idempotency-Key on every POST (a retried tap is one payment).
"use strict";
const FP = (() => {
  const words = JSON.parse(document.getElementById("words").textContent);
  const t = (key, values) => {
    let text = words[key] || key;
    for (const [k, v] of Object.entries(values || {})) text = text.replace(`{${k}}`, v);
    return text;
  };
  const csrf = () => {
    const m = document.cookie.match(/(?:^|;\s*)fp_csrf=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  };
  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  const listeners = [];
  async function api(method, path, body, options = {}) {
    const headers = { "X-CSRF-Token": csrf() };
    let payload;
    if (body instanceof Blob) { payload = body; headers["Content-Type"] = body.type || "application/octet-stream"; }
    else if (body !== undefined) { payload = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
    if (method === "POST" && path.startsWith("/v1/")) headers["Idempotency-Key"] = options.key || crypto.randomUUID();
    const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const error = (data && data.error) || {};
      const failure = new ApiError(response.status, error.code || "error", error.message || String(response.status));
      // A cookie the server no longer accepts is cleared, or every later call (even
      // registering) would carry it and be refused.
      if (failure.code === "invalid_credentials" && !path.startsWith("/web/session")) {
        fetch("/web/logout", { method: "POST", headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" });
      }
      if (response.status === 401 && !options.quiet401) listeners.forEach((f) => f(failure));
      throw failure;
    }
    return data;
  }
  const onUnauthorized = (f) => listeners.push(f);
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v; else if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  }
  function formData(form) { return Object.fromEntries(new FormData(form).entries()); }
  function showError(form, error) {
    const slot = form.querySelector(".error");
    if (slot) slot.textContent = error ? `${error.code || ""}: ${error.message || error}` : "";
  }
  function toast(text) {
    const node = $("#toast"); node.textContent = text; node.hidden = false;
    clearTimeout(toast.timer); toast.timer = setTimeout(() => { node.hidden = true; }, 4000);
  }
  async function svgUrl(text, barcode) {
    const svg = await api("POST", "/web/api/render", { text, barcode });
    return URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
  }
  // Time to interactive: the moment a page's first data is shown and its handlers are bound.
  function ready() { window.fpReadyMs = performance.now(); document.body.dataset.ready = "1"; }
  async function keyLogin(form, onDone) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault(); showError(form, null);
      try {
        await api("POST", "/web/session/key", { api_key: form.api_key.value, role: form.dataset.role });
        form.reset(); form.hidden = true; onDone();
      } catch (error) { showError(form, error); }
    });
  }
  // A payment's (or receipt's) campaigns as the cardholder reads them: "Name −¥5.00, funded by
  // the card's bank". One wording for the result and the receipt, so they cannot disagree.
  const promotionsText = (promotions) => (promotions || [])
    .map((p) => `${p.name} −¥${p.discount}, ${t("funded_by")} ${t(`funder_${p.funder_kind}`)}`)
    .join("; ");
  async function logout() { await api("POST", "/web/logout"); location.reload(); }
  return { t, api, ApiError, onUnauthorized, $, $$, el, formData, showError, toast, svgUrl, ready, keyLogin, logout, promotionsText };
})();
