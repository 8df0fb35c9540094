// Functions: each registered function with its triggers, flow control and recent health.
import { api } from "./api.js";
import { usePoll } from "./poll.js";
import { href } from "./router.js";
import { RunsTable } from "./runs.js";
import { Counts, ErrorBox, Json, Time, html } from "./ui.js";

const FLOW = ["concurrency", "throttle", "rate_limit", "debounce", "batch_events", "priority",
  "singleton", "timeouts", "idempotency", "cancel_on"];

export function triggerText(t) {
  if (t.event) return t.if ? `${t.event} if ${t.if}` : t.event;
  if (t.cron) return `cron ${t.cron}`;
  return JSON.stringify(t);
}

function flowControl(config) {
  return FLOW.filter((k) => {
    const v = config[k];
    return v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0);
  });
}

function rate(value) {
  if (value === null || value === undefined) return html`<span class="muted">–</span>`;
  const pct = (value * 100).toFixed(value && value < 0.1 ? 1 : 0);
  return html`<span class=${value > 0 ? "bad" : "good"}>${pct}%</span>`;
}

export function FunctionsPage() {
  const { data, error } = usePoll(() => api("/v1/functions"), [], 5000);
  const functions = data ? data.data : null;
  return html`<section>
    <div class="page-head"><h1>Functions</h1>
      <span class="muted">${functions ? `${functions.length} registered by workers` : ""}</span></div>
    <${ErrorBox} error=${error} />
    ${functions && !functions.length ? html`<p class="empty">No function yet: start a worker
      (<code>ferryman dev -m your.module</code>) and its functions appear here.</p>` : null}
    ${functions && functions.length ? html`<div class="table-wrap"><table class="grid" data-testid="functions">
      <thead><tr><th>Function</th><th>Triggers</th><th>Flow control</th><th>Last hour</th>
        <th>Last day</th><th>Failure rate (day)</th><th>Last run</th></tr></thead>
      <tbody>${functions.map((f) => html`<tr key=${f.id} data-testid="function-row" data-function=${f.id}>
        <td><a href=${href(`/functions/${encodeURIComponent(f.id)}`)}>${f.name || f.id}</a>
          <div class="muted small">${f.id}</div></td>
        <td>${f.triggers.map((t) => html`<div class="trigger"><code>${triggerText(t)}</code></div>`)}</td>
        <td>${flowControl(f.config).map((k) => html`<span class="tag">${k}</span>`)}
          ${flowControl(f.config).length ? null : html`<span class="muted">–</span>`}</td>
        <td><${Counts} counts=${f.runs.last_hour} /></td>
        <td><${Counts} counts=${f.runs.last_day} /></td>
        <td>${rate(f.failure_rate)}</td>
        <td>${f.last_run_at ? html`<a href=${href("/runs", { function_id: f.id })}><${Time} iso=${f.last_run_at} /></a>` : html`<span class="muted">never</span>`}</td>
      </tr>`)}</tbody></table></div>` : null}
  </section>`;
}

export function FunctionPage({ id }) {
  const { data, error } = usePoll(() => api(`/v1/functions/${encodeURIComponent(id)}`), [id], 5000);
  const f = data ? data.data : null;
  return html`<section>
    <div class="page-head"><h1>${f ? f.name || f.id : id}</h1>
      <a class="button" href=${href("/runs", { function_id: id })}>All runs of this function</a></div>
    <${ErrorBox} error=${error} />
    ${f ? html`<div class="cards">
      <div class="card"><h3>Triggers</h3>${f.triggers.map((t) => html`<div><code>${triggerText(t)}</code></div>`)}</div>
      <div class="card"><h3>Last hour</h3><${Counts} counts=${f.runs.last_hour} /></div>
      <div class="card"><h3>Last day</h3><${Counts} counts=${f.runs.last_day} /></div>
      <div class="card"><h3>Failure rate</h3>${rate(f.failure_rate)}
        <div class="muted small">failed ÷ finished, last day</div></div>
      <div class="card"><h3>Retries</h3>${f.config.retries}</div>
    </div>
    <details class="panel"><summary>Configuration (flow control, retries, cancel_on…)</summary>
      <${Json} value=${f.config} open=${1} /></details>` : null}
    <h2>Recent runs</h2>
    <${RunsTable} filters=${{ function_id: id }} limit=${20} />
  </section>`;
}
