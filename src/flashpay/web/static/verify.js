// Verifying a payment receipt in the page, not taking the server's word for it: the receipt's
// leaf is hashed (RFC 9162: SHA-256(0x00 || leaf)), folded up its inclusion proof to a root, and
// that root must be the one in a checkpoint signed by the audit log's key (Ed25519 over the note
// text) and co-signed by a quorum of witnesses (cosignature/v1: Ed25519 over
// "cosignature/v1\ntime <t>\n" || note text), whose keys come from the published keys file.
// Formats: docs/reference/chain.md (flashpay.chain.merkle, note, leaf, receipt).
"use strict";
const FPVerify = (() => {
  const enc = new TextEncoder();
  const b64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0; for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const sha256 = async (data) => new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const u64 = (bytes, at) => new DataView(bytes.buffer, bytes.byteOffset + at, 8).getBigUint64(0);
  class VerifyError extends Error {}
  const fail = (message) => { throw new VerifyError(message); };

  // A keys file: "<name>+<8 hex key id>+base64(type || 32-byte key)" per line, "quorum <k>".
  async function parseKeys(text) {
    const logs = []; const witnesses = []; let quorum = null;
    for (const raw of text.split("\n")) {
      const line = raw.split("#")[0].trim();
      if (!line) continue;
      if (line.startsWith("quorum ")) { quorum = Number(line.split(/\s+/)[1]); continue; }
      // base64 may hold "+" too: the name and the key id are the first two fields.
      const first = line.indexOf("+"); const second = line.indexOf("+", first + 1);
      if (first < 1 || second !== first + 9) fail(`malformed key: ${line}`);
      const name = line.slice(0, first); const idHex = line.slice(first + 1, second);
      const keyB64 = line.slice(second + 1);
      const raw64 = b64(keyB64);
      if (raw64.length !== 33) fail(`key ${name}: not type + 32 bytes`);
      const id = parseInt(idHex, 16);
      const hash = await sha256(concat(enc.encode(name + "\n"), raw64));
      if (new DataView(hash.buffer).getUint32(0) !== id) fail(`key ${name}: key id does not match`);
      const key = await crypto.subtle.importKey("raw", raw64.slice(1), { name: "Ed25519" }, false, ["verify"]);
      const verifier = { name, id, type: raw64[0], key };
      if (raw64[0] === 0x01) logs.push(verifier); else if (raw64[0] === 0x04) witnesses.push(verifier);
      else fail(`key ${name}: unknown type ${raw64[0]}`);
    }
    if (logs.length !== 1) fail(`the keys name ${logs.length} log keys, not one`);
    if (quorum === null) quorum = witnesses.length ? Math.floor(witnesses.length / 2) + 1 : 0;
    return { log: logs[0], witnesses, quorum };
  }

  // The signed note: text, a blank line, "— <name> base64(key id || signature)" lines.
  async function verifyNote(note, keys) {
    const cut = note.lastIndexOf("\n\n");
    if (cut < 0) fail("the checkpoint has no signatures");
    const text = note.slice(0, cut + 1);
    const body = enc.encode(text);
    let logSigned = false; const cosigners = new Map();
    for (const line of note.slice(cut + 2).split("\n")) {
      if (!line) continue;
      if (!line.startsWith("— ")) fail("malformed signature line");
      const [name, sig64] = line.slice(2).split(" ");
      const raw = b64(sig64);
      const id = new DataView(raw.buffer).getUint32(0);
      const known = [keys.log, ...keys.witnesses].find((k) => k.name === name && k.id === id);
      if (!known) continue; // a key we do not know: ignored, as Go's note.Open
      let message = body; let signature = raw.slice(4);
      if (known.type === 0x04) {
        if (signature.length !== 72) fail(`cosignature of ${name}: wrong length`);
        const time = u64(signature, 0);
        message = concat(enc.encode(`cosignature/v1\ntime ${time}\n`), body);
        signature = signature.slice(8);
        cosigners.set(name, Number(time));
      }
      const ok = await crypto.subtle.verify({ name: "Ed25519" }, known.key, signature, message);
      if (!ok) fail(`the signature of ${name} does not verify`);
      if (known === keys.log) logSigned = true;
    }
    if (!logSigned) fail("the checkpoint is not signed by the log key");
    if (cosigners.size < keys.quorum) fail(`${cosigners.size} witness cosignature(s), the quorum is ${keys.quorum}`);
    const [origin, size, root64] = text.split("\n");
    if (origin !== keys.log.name) fail(`the checkpoint is of log ${origin}`);
    return { size: Number(size), root: b64(root64), cosigners };
  }

  // RFC 9162 §2.1.3.2: verify an inclusion proof.
  async function rootFromProof(leafHash, index, size, proof) {
    if (index >= size) fail("the leaf index is not below the tree size");
    let fn = index; let sn = size - 1; let r = leafHash;
    const node = (l, rr) => sha256(concat(Uint8Array.of(1), l, rr));
    for (const p of proof) {
      if (sn === 0) fail("the proof is too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await node(p, r);
        if (fn % 2 === 0) { while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } }
      } else {
        r = await node(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) fail("the proof is too short");
    return r;
  }

  async function verifyReceipt(receipt, keysText) {
    if (!receipt || receipt.format !== "flashpay-receipt/v1") fail("not a flashpay-receipt/v1");
    const keys = await parseKeys(keysText);
    const checkpoint = await verifyNote(receipt.checkpoint, keys);
    if (checkpoint.size !== receipt.tree_size) fail("the receipt's tree size is not the checkpoint's");
    const leaf = b64(receipt.leaf);
    // Version 2 (decision 0019): version 1 plus the chain's discount after the transfers.
    if (leaf[0] !== 1 && leaf[0] !== 2) fail(`unknown leaf version ${leaf[0]}`);
    if (u64(leaf, 1) !== BigInt(receipt.leaf_index)) fail("the leaf is for another index");
    if (u64(leaf, 9) !== BigInt(receipt.chain_id)) fail("the leaf is for another chain");
    const leafHash = await sha256(concat(Uint8Array.of(0), leaf));
    const root = await rootFromProof(leafHash, receipt.leaf_index, receipt.tree_size, receipt.inclusion_proof.map(b64));
    if (!equal(root, checkpoint.root)) fail("the inclusion proof does not reach the signed root");
    const amounts = [];
    const count = new DataView(leaf.buffer).getUint16(50);
    for (let k = 0; k < count; k++) amounts.push(u64(leaf, 52 + 92 * k + 24));
    const discount = leaf[0] === 2 ? u64(leaf, 52 + 92 * count) : null;  // minor units, signed in the leaf
    return { treeSize: checkpoint.size, cosigners: [...checkpoint.cosigners.keys()], amounts, discount };
  }
  return { verifyReceipt, parseKeys, rootFromProof, VerifyError };
})();
