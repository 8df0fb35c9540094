// Runs: filters (function, status, time range, event id), newest first, keyset pages,
// live updates, and bulk cancel / replay of the filtered set after a counted confirmation.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, query } from "./api.js";
import { usePoll } from "./poll.js";
import { href, navigate } from "./router.js";
import { Confirm, ErrorBox, STATUSES, Status, Time, duration, html, ms, toast } from "./ui.js";

const RANGES = { "": "any time", "15m": "last 15 minutes", "1h": "last hour", "24h": "last day",
  "7d": "last 7 days", custom: "custom…" };
const RANGE_MS = { "15m": 9e5, "1h": 36e5, "24h": 864e5, "7d": 6048e5 };

// The API filter for the page's parameters; a preset range becomes "after" now.
export function apiFilter(p) {
  const f = { function_id: p.function_id, status: p.status, event_id: p.event_id };
  if (RANGE_MS[p.range]) f.after = new Date(Date.now() - RANGE_MS[p.range]).toISOString();
  if (p.range === "custom") {
    if (p.after) f.after = new Date(p.after).toISOString();
    if (p.before) f.before = new Date(p.before).toISOString();
  }
  return f;
}

export function RunsTable({ filters, limit = 50 }) {
  const [cursors, setCursors] = useState([null]);
  const key = JSON.stringify(filters);
  useEffect(() => setCursors([null]), [key]);
  const cursor = cursors[cursors.length - 1];
  const seen = useRef(null);
  const { data, error } = usePoll(
    () => api(`/v1/runs${query({ ...apiFilter(filters), limit, cursor })}`),
    [key, cursor],
    2000,
  );
  const runs = data ? data.data : null;
  // New rows since the previous poll are highlighted (live updates on the first page).
  const known = seen.current;
  useEffect(() => {
    if (runs) seen.current = new Set(runs.map((r) => r.run_id));
  }, [runs]);
  useEffect(() => {
    seen.current = null;
  }, [key, cursor]);
  return html`<div>
    <${ErrorBox} error=${error} />
    ${runs && !runs.length ? html`<p class="empty" data-testid="no-runs">No runs match.</p>` : null}
    ${runs && runs.length ? html`<div class="table-wrap"><table class="grid" data-testid="runs">
      <thead><tr><th>Run</th><th>Function</th><th>Status</th><th>Trigger event</th>
        <th>Created</th><th>Duration</th></tr></thead>
      <tbody>${runs.map((r) => html`<tr key=${r.run_id} data-testid="run-row" data-run=${r.run_id}
          class=${known && !known.has(r.run_id) ? "fresh" : ""}>
        <td><a href=${href(`/runs/${r.run_id}`)}><code>${r.run_id}</code></a>
          ${r.replay_of ? html`<div class="muted small">replay of <code>${r.replay_of}</code></div>` : null}</td>
        <td><a href=${href(`/functions/${encodeURIComponent(r.function_id)}`)}>${r.function_id}</a></td>
        <td><${Status} status=${r.status} />${r.reason ? html`<div class="muted small" data-testid="reason">${r.reason}</div>` : null}</td>
        <td>${r.event_id ? html`<a href=${href("/events", { id: r.event_id })}><code class="small">${r.event_id}</code></a>` : html`<span class="muted">–</span>`}</td>
        <td><${Time} iso=${r.created_at} /></td>
        <td>${r.ended_at ? duration(ms(r.started_at || r.created_at, r.ended_at)) : html`<span class="muted">${r.started_at ? "running" : "–"}</span>`}</td>
      </tr>`)}</tbody></table></div>` : null}
    <div class="pager">
      <button type="button" disabled=${cursors.length < 2} onClick=${() => setCursors(cursors.slice(0, -1))}>← Newer</button>
      <span class="muted small">${cursors.length === 1 ? "newest first · updates live" : `page ${cursors.length}`}</span>
      <button type="button" data-testid="older" disabled=${!data || !data.cursor}
        onClick=${() => setCursors([...cursors, data.cursor])}>Older →</button>
    </div>
  </div>`;
}

function Bulk({ params }) {
  const [pending, setPending] = useState(null);
  const [busy, setBusy] = useState(false);
  const usable = params.function_id && !params.event_id;
  const why = !params.function_id ? "choose a function first: bulk actions act on one function's runs"
    : params.event_id ? "bulk actions filter by function, status and time, not by event" : "";

  async function ask(action) {
    const filter = apiFilter(params);
    delete filter.event_id;
    try {
      const { data } = await api(`/v1/runs/count${query({ ...filter, action })}`);
      setPending({ action, filter, count: data.count });
    } catch (exc) {
      toast(exc.message, "error");
    }
  }
  async function confirm() {
    setBusy(true);
    try {
      const body = Object.fromEntries(Object.entries(pending.filter).filter(([, v]) => v));
      const { data } = await api(`/v1/runs/${pending.action}`, { method: "POST", body });
      toast(`${pending.action === "cancel" ? "Cancelled" : "Replayed"} ${data.count} run${data.count === 1 ? "" : "s"}`, "ok");
    } catch (exc) {
      toast(exc.message, "error");
    }
    setBusy(false);
    setPending(null);
  }
  const verb = pending && (pending.action === "cancel" ? "Cancel" : "Replay");
  return html`<div class="bulk">
    <button type="button" data-testid="bulk-cancel" disabled=${!usable} title=${why} onClick=${() => ask("cancel")}>Cancel matching…</button>
    <button type="button" data-testid="bulk-replay" disabled=${!usable} title=${why} onClick=${() => ask("replay")}>Replay matching…</button>
    ${pending ? html`<${Confirm} title=${`${verb} ${pending.count} run${pending.count === 1 ? "" : "s"}?`}
        confirmLabel=${`${verb} ${pending.count}`} danger=${pending.action === "cancel"} busy=${busy || !pending.count}
        onConfirm=${confirm} onCancel=${() => setPending(null)}>
      <p data-testid="confirm-count">${pending.count === 0 ? "No run matches: nothing to do."
        : `${pending.count} run${pending.count === 1 ? "" : "s"} of ${pending.filter.function_id}
          ${pending.action === "cancel" ? "that have not finished will be cancelled" : "that failed or were cancelled will be replayed"}
          ${pending.filter.status ? ` (status ${pending.filter.status})` : ""}.`}</p>
    </${Confirm}>` : null}
  </div>`;
}

export function RunsPage({ params }) {
  const fns = usePoll(() => api("/v1/functions"), [], 30000);
  const set = (change) => navigate("/runs", { ...params, ...change }, { replace: true });
  const functions = fns.data ? fns.data.data : [];
  return html`<section>
    <div class="page-head"><h1>Runs</h1><${Bulk} params=${params} /></div>
    <form class="filters" onSubmit=${(e) => e.preventDefault()} data-testid="filters">
      <label>Function
        <select data-testid="filter-function" value=${params.function_id || ""} onChange=${(e) => set({ function_id: e.target.value })}>
          <option value="">all functions</option>
          ${functions.map((f) => html`<option value=${f.id}>${f.id}</option>`)}
          ${params.function_id && !functions.some((f) => f.id === params.function_id) ? html`<option value=${params.function_id}>${params.function_id}</option>` : null}
        </select></label>
      <label>Status
        <select data-testid="filter-status" value=${params.status || ""} onChange=${(e) => set({ status: e.target.value })}>
          <option value="">any status</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select></label>
      <label>Time
        <select data-testid="filter-range" value=${params.range || ""} onChange=${(e) => set({ range: e.target.value })}>
          ${Object.entries(RANGES).map(([k, v]) => html`<option value=${k}>${v}</option>`)}
        </select></label>
      ${params.range === "custom" ? html`
        <label>After <input type="datetime-local" value=${params.after || ""} onChange=${(e) => set({ after: e.target.value })} /></label>
        <label>Before <input type="datetime-local" value=${params.before || ""} onChange=${(e) => set({ before: e.target.value })} /></label>` : null}
      <label>Event id
        <input data-testid="filter-event" placeholder="01J…" value=${params.event_id || ""}
          onChange=${(e) => set({ event_id: e.target.value.trim() })} /></label>
      ${Object.values(params).some(Boolean) ? html`<button type="button" class="link" onClick=${() => navigate("/runs", {}, { replace: true })}>Clear</button>` : null}
    </form>
    <${RunsTable} filters=${params} />
  </section>`;
}
