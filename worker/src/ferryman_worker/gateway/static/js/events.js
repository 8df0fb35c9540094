// Events: the stream of received events with the runs each started (or the rule that
// skipped it), and a form to send one, with a JSON editor that checks as you type.
import { useState } from "preact/hooks";
import { api, query } from "./api.js";
import { usePoll } from "./poll.js";
import { href, navigate } from "./router.js";
import { ErrorBox, Json, Status, Time, html, stamp, toast } from "./ui.js";

const KEY = "ferryman.eventKey";

function parseData(text) {
  if (!text.trim()) return { value: {} };
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return { error: "data must be a JSON object, like {\"bookingId\": \"b-1\"}" };
    }
    return { value };
  } catch (exc) {
    return { error: exc.message };
  }
}

function SendForm({ onSent }) {
  const [name, setName] = useState("");
  const [text, setText] = useState("{\n  \n}");
  const [key, setKey] = useState(localStorage.getItem(KEY) || "dev");
  const [busy, setBusy] = useState(false);
  const parsed = parseData(text);
  const ok = name.trim() && !parsed.error;

  async function send(e) {
    e.preventDefault();
    if (!ok) return;
    setBusy(true);
    try {
      localStorage.setItem(KEY, key);
      const result = await api(`/e/${encodeURIComponent(key)}`, {
        method: "POST",
        body: { name: name.trim(), data: parsed.value },
      });
      toast(`Sent ${name.trim()}`, "ok");
      onSent(result.ids[0]);
    } catch (exc) {
      toast(exc.message, "error");
    }
    setBusy(false);
  }
  const keydown = (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e);
  };
  return html`<form class="panel send" onSubmit=${send} data-testid="send-form">
    <h2>Send an event</h2>
    <div class="row">
      <label class="grow">Name <input data-testid="event-name" required placeholder="booking.created"
        value=${name} onInput=${(e) => setName(e.target.value)} /></label>
      <label>Event key <input data-testid="event-key" value=${key} size="10" onInput=${(e) => setKey(e.target.value)} /></label>
    </div>
    <label>Data (JSON)
      <textarea data-testid="event-data" class=${`code ${parsed.error ? "invalid" : ""}`} rows="6" spellcheck="false"
        value=${text} onInput=${(e) => setText(e.target.value)} onKeyDown=${keydown}
        aria-invalid=${Boolean(parsed.error)}></textarea></label>
    <div class="row">
      <span class=${parsed.error ? "bad small" : "muted small"} data-testid="json-status">${parsed.error ? `Not valid: ${parsed.error}` : "Valid JSON · Ctrl+Enter sends"}</span>
      <button type="submit" class="primary" data-testid="send-event" disabled=${!ok || busy}>Send event</button>
    </div>
  </form>`;
}

function EventRuns({ id }) {
  const { data, error } = usePoll(() => api(`/v1/events/${encodeURIComponent(id)}/runs`), [id], 2000);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<p class="muted">Loading…</p>`;
  const skipped = data.skipped || [];
  return html`<div data-testid="event-runs">
    ${data.data.length ? data.data.map((r) => html`<div class="event-run">
      <a href=${href(`/runs/${r.run_id}`)} data-testid="event-run"><code>${r.run_id}</code></a>
      ${r.function_id} <${Status} status=${r.status} />${r.reason ? html` <span class="muted small">${r.reason}</span>` : null}</div>`)
      : html`<p class="muted">Started no run${skipped.length ? "" : " (no function is triggered by it, or its trigger's if filtered it out)"}.</p>`}
    ${skipped.map((s) => html`<div class="event-run" data-testid="skipped">${s.function_id}: <span class="tag">skipped by ${s.skipped}</span>
      ${s.run_id ? html` <a href=${href(`/runs/${s.run_id}`)}><code>${s.run_id}</code></a>` : null}</div>`)}
  </div>`;
}

export function EventsPage({ params }) {
  const [nameFilter, setNameFilter] = useState(params.name || "");
  const { data, error } = usePoll(() => api(`/v1/events${query({ name: params.name, limit: 50 })}`), [params.name], 2000);
  const open = params.id;
  const set = (change) => navigate("/events", { ...params, ...change }, { replace: true });
  const events = data ? data.data : null;
  return html`<section>
    <div class="page-head"><h1>Events</h1></div>
    <${SendForm} onSent=${(id) => set({ id })} />
    ${open ? html`<div class="panel" data-testid="open-event"><h3>Event <code>${open}</code></h3>
      ${(events || []).filter((e) => e.id === open).map((e) => html`<p><code>${e.name}</code> · ${stamp(e.received_at)}</p><${Json} value=${e.data} />`)}
      <h4>Runs</h4><${EventRuns} id=${open} /></div>` : null}
    <form class="filters" onSubmit=${(e) => { e.preventDefault(); set({ name: nameFilter.trim() }); }}>
      <label>Name <input placeholder="all events" value=${nameFilter} onInput=${(e) => setNameFilter(e.target.value)} /></label>
      <button type="submit">Filter</button>
    </form>
    <${ErrorBox} error=${error} />
    ${events && !events.length ? html`<p class="empty">No event received yet.</p>` : null}
    ${events && events.length ? html`<div class="table-wrap"><table class="grid" data-testid="events">
      <thead><tr><th>Received</th><th>Name</th><th>Id</th><th>Runs started (or skipped by)</th></tr></thead>
      <tbody>${events.map((e) => html`<tr key=${e.id} data-testid="event-row" class=${e.id === open ? "selected" : ""}>
        <td><${Time} iso=${e.received_at} /></td>
        <td><code>${e.name}</code></td>
        <td><a href=${href("/events", { ...params, id: e.id })}><code class="small">${e.id}</code></a></td>
        <td>${(e.runs || []).map((r) => html`<a class="run-chip" href=${href(`/runs/${r.run_id}`)} title=${r.function_id}><${Status} status=${r.status} /></a>`)}
          ${(e.skipped || []).map((k) => html`<span class="tag" data-testid="skipped-chip" title=${`${k.function_id} skipped it`}>${k.function_id}: skipped by ${k.skipped}</span>`)}
          ${(e.runs || []).length || (e.skipped || []).length ? null : html`<span class="muted">–</span>`}</td>
      </tr>`)}</tbody></table></div>` : null}
  </section>`;
}
