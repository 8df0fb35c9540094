// Webhooks: the configured endpoints, and for each its recent deliveries — verified (with
// the events each made), refused by verification (with the reason; never stored, so only
// the last few kept in the webhook's status), or failed in the transform — with Rerun.
import { useEffect, useState } from "preact/hooks";
import { api, query } from "./api.js";
import { usePoll } from "./poll.js";
import { href } from "./router.js";
import { ErrorBox, Json, Time, html, stamp, toast } from "./ui.js";

const SHOWN = {
  ACCEPTED: ["verified", "COMPLETED"],
  TRANSFORM_FAILED: ["transform error", "FAILED"],
  REJECTED: ["rejected", "CANCELLED"],
};

function DeliveryStatus({ status }) {
  const [label, look] = SHOWN[status] || [status, "QUEUED"];
  return html`<span class="badge status-${look}" data-testid="delivery-status">${label}</span>`;
}

function scheme(spec) {
  const v = (spec && spec.verification) || {};
  return v.type || "–";
}

function LastResult({ status }) {
  const refused = ((status && status.recentRejections) || []).length;
  if (!status || (!status.lastDeliveryTime && !status.lastErrorTime)) return html`<span class="muted">no delivery yet</span>`;
  return html`<div>${status.lastDeliveryTime ? html`<div>last delivery <${Time} iso=${status.lastDeliveryTime} />
      ${status.lastResult ? html` <${DeliveryStatus} status=${status.lastResult} />` : null}</div>` : null}
    ${status.lastError ? html`<div class="bad small" data-testid="last-error">${status.lastError}
      ${status.lastErrorTime ? html` · <${Time} iso=${status.lastErrorTime} />` : null}</div>` : null}
    ${refused ? html`<div class="small"><span class="badge status-CANCELLED" data-testid="refused">${refused} refused recently</span></div>` : null}</div>`;
}

export function WebhooksPage() {
  const { data, error } = usePoll(() => api("/v1/webhooks"), [], 5000);
  const hooks = data ? data.data : null;
  return html`<section>
    <div class="page-head"><h1>Webhooks</h1>
      <span class="muted">${hooks ? `${hooks.length} configured` : ""}</span></div>
    <${ErrorBox} error=${error} />
    ${hooks && !hooks.length ? html`<p class="empty" data-testid="no-webhooks">No webhook yet: declare one with
      <code>fm.webhook(...)</code> in code or a <code>Webhook</code> resource (docs/webhooks.md).</p>` : null}
    ${hooks && hooks.length ? html`<div class="table-wrap"><table class="grid" data-testid="webhooks">
      <thead><tr><th>Webhook</th><th>Endpoint</th><th>Verification</th><th>Declared by</th><th>Last result</th></tr></thead>
      <tbody>${hooks.map((w) => html`<tr key=${w.name} data-testid="webhook-row" data-webhook=${w.name}>
        <td><a href=${href(`/webhooks/${encodeURIComponent(w.name)}`)}>${w.name}</a></td>
        <td><code class="nowrap">POST ${w.path}</code></td>
        <td><span class="tag">${scheme(w.spec)}</span></td>
        <td class="muted small">${w.owner || "–"}</td>
        <td><${LastResult} status=${w.status} /></td>
      </tr>`)}</tbody></table></div>` : null}
  </section>`;
}

function Events({ ids }) {
  if (!ids || !ids.length) return html`<span class="muted">none</span>`;
  return html`${ids.map((id) => html`<div><a class="nowrap" data-testid="delivery-event" href=${href("/events", { id })}><code class="small">${id}</code></a></div>`)}`;
}

function DeliveryDetail({ d }) {
  let body = d.body;
  if (d.body_encoding === "utf-8" && (d.content_type || "").includes("json")) {
    try {
      body = JSON.parse(d.body);
    } catch {
      body = d.body;
    }
  }
  return html`<div class="delivery-detail" data-testid="delivery-detail">
    ${typeof body === "string" ? html`<div class="json-label">Body (${d.body_encoding})</div><pre class="stack">${body}</pre>`
      : html`<${Json} label="Body" value=${body} open=${1} />`}
    <${Json} label="Headers (secrets redacted)" value=${d.headers} open=${0} />
    ${Object.keys(d.query || {}).length ? html`<${Json} label="Query" value=${d.query} open=${1} />` : null}
    ${d.output ? html`<${Json} label="Events made" value=${d.output} open=${1} />` : null}
  </div>`;
}

function DeliveryRow({ d, name, onChange }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  async function rerun() {
    setBusy(true);
    try {
      const { data } = await api(`/v1/webhooks/${encodeURIComponent(name)}/deliveries/${encodeURIComponent(d.id)}/rerun`,
        { method: "POST" });
      toast(`Re-ran ${d.id}: ${data.event_ids.length} event${data.event_ids.length === 1 ? "" : "s"}`, "ok");
    } catch (exc) {
      toast(`Re-run failed: ${exc.message}`, "error");
    }
    setBusy(false);
    onChange();
  }
  const refused = d.status === "REJECTED";
  return html`<tr data-testid="delivery-row" data-delivery=${d.id || ""} data-status=${d.status}>
    <td><${Time} iso=${d.received_at} /><div class="muted small">${stamp(d.received_at)}</div></td>
    <td><${DeliveryStatus} status=${d.status} />
      ${d.reason ? html` <span class="tag" data-testid="delivery-reason">${d.reason}</span>` : null}
      ${d.error ? html`<div class="bad small" data-testid="delivery-error">${d.error}</div>` : null}</td>
    <td>${refused ? html`<span class="muted small">from ${d.client}</span>` : html`<code class="small">${d.id}</code>
      ${d.reruns ? html`<div class="muted small">re-run ${d.reruns}×</div>` : null}`}</td>
    <td>${refused ? html`<span class="muted">–</span>` : html`<${Events} ids=${d.event_ids} />`}</td>
    <td class="delivery-actions">${refused ? html`<span class="muted small">not stored</span>` : html`
      <button type="button" data-testid="rerun" disabled=${busy} onClick=${rerun}
        title="Run the kept body through the current transform">Rerun</button>
      <button type="button" class="link" aria-expanded=${open} onClick=${() => setOpen(!open)}>${open ? "Hide" : "Body"}</button>`}</td>
  </tr>
  ${open ? html`<tr class="detail-row"><td colspan="5"><${DeliveryDetail} d=${d} /></td></tr>` : null}`;
}

// Refused deliveries (from the webhook's status) interleaved by time with the stored ones.
export function merged(deliveries, rejections, firstPage) {
  const refused = firstPage ? (rejections || []).map((r) => ({ ...r, status: "REJECTED", received_at: r.time, error: r.message })) : [];
  if (!firstPage || !deliveries.length) return [...refused, ...deliveries];
  const oldest = deliveries[deliveries.length - 1].received_at;
  const shown = refused.filter((r) => r.received_at >= oldest || deliveries.length < 50);
  return [...deliveries, ...shown].sort((a, b) => (a.received_at < b.received_at ? 1 : -1));
}

export function WebhookPage({ name }) {
  const hook = usePoll(() => api(`/v1/webhooks/${encodeURIComponent(name)}`), [name], 3000);
  const [cursors, setCursors] = useState([null]);
  useEffect(() => setCursors([null]), [name]);
  const cursor = cursors[cursors.length - 1];
  const list = usePoll(() => api(`/v1/webhooks/${encodeURIComponent(name)}/deliveries${query({ limit: 50, cursor })}`),
    [name, cursor], 3000);
  const w = hook.data ? hook.data.data : null;
  const status = (w && w.status) || {};
  const rows = list.data ? merged(list.data.data, status.recentRejections, cursors.length === 1) : null;
  const refresh = () => {
    hook.refresh();
    list.refresh();
  };
  return html`<section data-testid="webhook-page">
    <div class="page-head"><h1>Webhook ${name}</h1><a href=${href("/webhooks")}>All webhooks</a></div>
    <${ErrorBox} error=${hook.error || list.error} />
    ${w ? html`<dl class="facts wide">
      <dt>Endpoint</dt><dd><code>POST ${w.path}</code></dd>
      <dt>Verification</dt><dd><span class="tag">${scheme(w.spec)}</span></dd>
      <dt>Declared by</dt><dd>${w.owner || "–"}</dd>
      <dt>Last result</dt><dd><${LastResult} status=${status} /></dd>
    </dl>
    <details class="panel"><summary>Transform and settings</summary>
      <pre class="stack">${(w.spec && w.spec.transform) || ""}</pre><${Json} value=${w.spec} open=${1} /></details>` : null}
    <h2>Recent deliveries <span class="muted small">newest first · refused ones are not stored: the last ${20} are listed from the webhook's status</span></h2>
    ${rows && !rows.length ? html`<p class="empty" data-testid="no-deliveries">No delivery yet.</p>` : null}
    ${rows && rows.length ? html`<div class="table-wrap"><table class="grid" data-testid="deliveries">
      <thead><tr><th>Received</th><th>Result</th><th>Delivery</th><th>Events made</th><th></th></tr></thead>
      <tbody>${rows.map((d) => html`<${DeliveryRow} key=${d.id || d.time} d=${d} name=${name} onChange=${refresh} />`)}</tbody>
    </table></div>` : null}
    <div class="pager">
      <button type="button" disabled=${cursors.length < 2} onClick=${() => setCursors(cursors.slice(0, -1))}>← Newer</button>
      <span class="muted small">${cursors.length === 1 ? "updates live" : `page ${cursors.length}`}</span>
      <button type="button" disabled=${!list.data || !list.data.cursor}
        onClick=${() => setCursors([...cursors, list.data.cursor])}>Older →</button>
    </div>
  </section>`;
}
