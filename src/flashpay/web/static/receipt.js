// A payment's receipt, and its check against the audit log done here, in the page
// (FPVerify, verify.js) from the receipt's proof and the published keys.
"use strict";
(async () => {
  const { t, $, el } = FP;
  const id = $("#receipt").dataset.payment;
  const audit = $("#receipt-audit");
  const response = await fetch(`/v1/payments/${id}/receipt`, { credentials: "same-origin" });
  if (!response.ok) {
    audit.className = "audit bad";
    audit.textContent = response.status === 401 ? t("session_expired") : t("receipt_refused");
    FP.ready(); return;
  }
  // The raw text keeps the 63-bit chain id exact (a JavaScript number would round it).
  const text = await response.text();
  const receipt = JSON.parse(text);
  const fields = $("#receipt-fields");
  const row = (k, v) => fields.append(el("dt", { text: k }), el("dd", { text: v }));
  row(t("voucher"), receipt.voucher); row(t("merchant"), receipt.recipient);
  if (receipt.discount && receipt.discount !== "0.00") {
    // A discounted QR payment: what was sold, what the campaigns took off and who paid for it.
    row(t("original_amount"), `¥${receipt.original_amount || receipt.amount}`);
    row(t("discount"), `−¥${receipt.discount}`);
    row(t("campaign"), FP.promotionsText(receipt.promotions));
    row(t("you_paid"), `¥${receipt.paid}`);
  } else row(t("amount"), `¥${receipt.amount}`);
  row(t("cards"), receipt.from_card);
  row(t("status"), receipt.status); row("", new Date(receipt.completed_at).toLocaleString());
  if (!receipt.audit) { audit.textContent = t("not_yet_logged"); FP.ready(); return; }
  const chain = text.match(/"chain_id"\s*:\s*(\d+)/);
  receipt.audit.chain_id = chain ? chain[1] : receipt.audit.chain_id;
  try {
    const keys = await fetch("/web/audit-keys.txt");
    if (!keys.ok) throw new Error("no published audit keys");
    const verified = await FPVerify.verifyReceipt(receipt.audit, await keys.text());
    audit.className = "audit ok";
    audit.textContent = `${t("verified")} · ${t("size")} ${verified.treeSize} · ${verified.cosigners.join(", ") || t("none")}`;
    audit.dataset.verified = "1";
    // A discounted chain's leaf signs its discount: the page shows it agrees with the receipt's.
    if (verified.discount !== null) audit.dataset.discountMinor = String(verified.discount);
  } catch (error) {
    audit.className = "audit bad";
    audit.textContent = `${t("verify_failed")}: ${error.message}`;
  }
  FP.ready();
})();
