// Small shared pieces: status badges, times and durations, JSON viewer, dialogs, toasts.
import { h } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);

export const STATUSES = ["QUEUED", "RUNNING", "SLEEPING", "WAITING", "COMPLETED", "FAILED", "CANCELLED"];
export const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

export function Status({ status }) {
  return html`<span class="badge status-${status}" data-testid="status">${status}</span>`;
}

export function ms(a, b) {
  if (!a || !b) return null;
  return new Date(b).getTime() - new Date(a).getTime();
}

export function duration(millis) {
  if (millis === null || millis === undefined || Number.isNaN(millis)) return "–";
  const abs = Math.abs(millis);
  if (abs === 0) return "0";
  if (abs < 1) return `${millis.toFixed(2)} ms`;
  if (abs < 1000) return `${Math.round(millis)} ms`;
  if (abs < 60_000) return `${(millis / 1000).toFixed(abs < 10_000 ? 2 : 1)} s`;
  const s = Math.round(abs / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function ago(iso) {
  if (!iso) return "–";
  const d = (Date.now() - new Date(iso).getTime()) / 1000;
  if (d < -1) return `in ${duration(-d * 1000)}`;
  if (d < 5) return "just now";
  if (d < 60) return `${Math.round(d)}s ago`;
  if (d < 3600) return `${Math.round(d / 60)}m ago`;
  if (d < 86400) return `${Math.round(d / 3600)}h ago`;
  return `${Math.round(d / 86400)}d ago`;
}

export function Time({ iso }) {
  if (!iso) return html`<span class="muted">–</span>`;
  return html`<time datetime=${iso} title=${new Date(iso).toLocaleString()}>${ago(iso)}</time>`;
}

export function stamp(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error-box" role="alert">${error.message || String(error)}</div>`;
}

// A JSON tree: objects and arrays fold (keyboard: Enter/Space on the summary).
export function Json({ value, open = 2, label }) {
  return html`<div class="json" data-testid="json">${label ? html`<div class="json-label">${label}</div>` : null}
    <${Node} value=${value} depth=${0} open=${open} /></div>`;
}

function Node({ value, depth, open, name }) {
  const key = name === undefined ? null : html`<span class="json-key">${JSON.stringify(name)}</span>: `;
  if (value === null || typeof value !== "object") {
    const kind = value === null ? "null" : typeof value;
    return html`<div class="json-line">${key}<span class="json-${kind}">${JSON.stringify(value)}</span></div>`;
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  const [lb, rb] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  if (!entries.length) return html`<div class="json-line">${key}${lb}${rb}</div>`;
  return html`<details class="json-node" open=${depth < open}>
    <summary>${key}${lb}<span class="muted"> ${entries.length} ${Array.isArray(value) ? "item" : "key"}${entries.length === 1 ? "" : "s"} </span></summary>
    <div class="json-children">
      ${entries.map(([k, v]) => html`<${Node} key=${k} name=${Array.isArray(value) ? undefined : k} value=${v} depth=${depth + 1} open=${open} />`)}
    </div>${rb}
  </details>`;
}

// A modal confirmation; Escape cancels, the confirm button has focus.
export function Confirm({ title, children, confirmLabel, danger, onConfirm, onCancel, busy }) {
  const button = useRef(null);
  useEffect(() => {
    if (button.current) button.current.focus();
    const key = (e) => {
      if (e.key === "Escape") onCancel();
    };
    window.addEventListener("keydown", key);
    return () => window.removeEventListener("keydown", key);
  }, []);
  return html`<div class="backdrop" onClick=${(e) => e.target === e.currentTarget && onCancel()}>
    <div class="dialog" role="dialog" aria-modal="true" aria-label=${title} data-testid="confirm-dialog">
      <h2>${title}</h2>
      <div class="dialog-body">${children}</div>
      <div class="dialog-actions">
        <button type="button" onClick=${onCancel}>Keep them</button>
        <button type="button" ref=${button} class=${danger ? "danger" : "primary"} disabled=${busy}
          onClick=${onConfirm} data-testid="confirm">${confirmLabel}</button>
      </div>
    </div>
  </div>`;
}

let pushToast = () => {};
export function toast(message, kind = "info") {
  pushToast({ message, kind, id: Math.random() });
}

export function Toasts() {
  const [items, setItems] = useState([]);
  useEffect(() => {
    pushToast = (t) => {
      setItems((all) => [...all, t]);
      setTimeout(() => setItems((all) => all.filter((x) => x.id !== t.id)), 6000);
    };
  }, []);
  return html`<div class="toasts" aria-live="polite">
    ${items.map((t) => html`<div key=${t.id} class="toast toast-${t.kind}" data-testid="toast">${t.message}</div>`)}
  </div>`;
}

export function Counts({ counts }) {
  const entries = STATUSES.filter((s) => counts && counts[s]);
  if (!entries.length) return html`<span class="muted">none</span>`;
  return html`<span class="counts">${entries.map((s) => html`<span class="count status-${s}" title=${s}>${counts[s]} ${s.toLowerCase()}</span>`)}</span>`;
}
