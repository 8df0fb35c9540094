// One run: trigger events, output or error, the timeline, each step's details, and the
// actions (cancel, replay, replay from a step). Polls until the run has finished.
import { useState } from "preact/hooks";
import { api } from "./api.js";
import { usePoll } from "./poll.js";
import { href, navigate } from "./router.js";
import { Timeline } from "./timeline.js";
import { ErrorBox, Json, Status, TERMINAL, Time, duration, html, ms, stamp, toast } from "./ui.js";

function Stack({ error }) {
  if (!error) return null;
  return html`<div class="err" data-testid="error">
    <div><strong>${error.name || "Error"}</strong>: <span data-testid="error-message">${error.message}</span></div>
    ${error.stack ? html`<details><summary>stack trace</summary><pre class="stack">${error.stack}</pre></details>` : null}
  </div>`;
}

function Attempts({ step }) {
  const history = step.attempt_history || [];
  if (!history.length) return null;
  return html`<table class="grid attempts" data-testid="attempts">
    <thead><tr><th>#</th><th>Status</th><th>Started</th><th>Duration</th><th>Error</th><th>Backoff</th></tr></thead>
    <tbody>${history.map((a) => html`<tr data-testid="attempt">
      <td>${a.attempt + 1}</td>
      <td><span class="badge status-${a.status}">${a.status}</span></td>
      <td>${stamp(a.started_at)}</td>
      <td>${duration(ms(a.started_at, a.ended_at))}</td>
      <td>${a.error ? html`<div data-testid="attempt-error"><${Stack} error=${a.error} /></div>` : html`<span class="muted">–</span>`}</td>
      <td>${a.retry_at ? html`${duration(ms(a.ended_at, a.retry_at))}<div class="muted small">next at ${new Date(a.retry_at).toLocaleTimeString()}</div>` : html`<span class="muted">–</span>`}</td>
    </tr>`)}</tbody></table>`;
}

function Wait({ step }) {
  const w = step.wait;
  if (!w) return null;
  return html`<dl class="facts" data-testid="wait">
    <dt>Waits for</dt><dd><code>${w.event}</code>${w.match ? html` where <code>${w.match}</code> matches` : null}
      ${w.if ? html` if <code>${w.if}</code>` : null}</dd>
    <dt>Timeout</dt><dd>${w.timeout_at ? stamp(w.timeout_at) : "none"}</dd>
    <dt>Resolved</dt><dd data-testid="resolved-by">${w.resolved_by ? html`by <strong>${w.resolved_by}</strong> at ${stamp(w.resolved_at)}` : "not yet"}
      ${w.event_id ? html` — event <a href=${href("/events", { id: w.event_id })}><code>${w.event_id}</code></a>` : null}</dd>
    ${step.invoked_run_id ? html`<dt>Invoked run</dt><dd><a data-testid="invoked-run" href=${href(`/runs/${step.invoked_run_id}`)}><code>${step.invoked_run_id}</code></a></dd>` : null}
  </dl>`;
}

function StepDetail({ run, step, onReplay }) {
  const canReplay = run.status === "FAILED" || run.status === "CANCELLED";
  return html`<div class="panel step-detail" data-testid="step-detail">
    <div class="page-head"><h3>${step.name && step.name !== step.id ? `${step.name} (${step.id})` : step.id}
      <span class="op op-${step.op}">${step.op}</span> <span class="badge status-${step.status}">${step.status}</span></h3>
      ${canReplay ? html`<button type="button" data-testid="replay-from-step" onClick=${() => onReplay(step.id)}>Replay from this step</button>` : null}</div>
    <dl class="facts">
      <dt>Started</dt><dd>${stamp(step.started_at)}</dd>
      <dt>Ended</dt><dd>${stamp(step.ended_at)}</dd>
      <dt>Duration</dt><dd>${duration(ms(step.started_at, step.ended_at))}</dd>
      ${step.op === "sleep" ? html`<dt>Wakes at</dt><dd data-testid="wake-at">${stamp(step.wake_at)}</dd>` : null}
      <dt>Attempts</dt><dd>${step.attempts}</dd>
    </dl>
    <${Wait} step=${step} />
    <${Attempts} step=${step} />
    ${step.error && !(step.attempt_history || []).length ? html`<${Stack} error=${step.error} />` : null}
    ${step.status === "COMPLETED" ? html`<${Json} label="Output" value=${step.output} />` : null}
  </div>`;
}

export function RunPage({ id }) {
  const { data, error, refresh } = usePoll(() => api(`/v1/runs/${encodeURIComponent(id)}`), [id], 1500,
    (body) => !TERMINAL.has(body.data.status));
  const [selected, setSelected] = useState(null);
  const [busy, setBusy] = useState(false);
  const run = data ? data.data : null;

  async function act(path, body, message) {
    setBusy(true);
    try {
      const result = await api(path, { method: "POST", body });
      toast(message, "ok");
      if (result.data.run_id !== id) navigate(`/runs/${result.data.run_id}`);
      else refresh();
    } catch (exc) {
      toast(exc.message, "error");
    }
    setBusy(false);
  }
  const cancel = () => act(`/v1/runs/${id}/cancel`, undefined, "Run cancelled");
  const replay = (fromStep) => act(`/v1/runs/${id}/replay`, fromStep ? { from_step: fromStep } : {},
    fromStep ? `Replayed from step ${fromStep}` : "Replayed");

  if (!run) return html`<section><h1>Run <code>${id}</code></h1><${ErrorBox} error=${error} />
    ${error ? null : html`<p class="muted">Loading…</p>`}</section>`;
  const step = run.steps.find((s) => s.id === selected);
  return html`<section data-testid="run-page">
    <div class="page-head">
      <h1>Run <code data-testid="run-id">${run.run_id}</code> <span data-testid="run-status"><${Status} status=${run.status} /></span></h1>
      <div class="actions">
        ${TERMINAL.has(run.status) ? null : html`<button type="button" class="danger" data-testid="cancel-run" disabled=${busy} onClick=${cancel}>Cancel run</button>`}
        ${run.status === "FAILED" || run.status === "CANCELLED" ? html`<button type="button" class="primary" data-testid="replay-run" disabled=${busy} onClick=${() => replay(null)}>Replay</button>` : null}
      </div>
    </div>
    <${ErrorBox} error=${error} />
    <dl class="facts wide">
      <dt>Function</dt><dd><a href=${href(`/functions/${encodeURIComponent(run.function_id)}`)}>${run.function_id}</a></dd>
      <dt>Created</dt><dd>${stamp(run.created_at)} (<${Time} iso=${run.created_at} />)</dd>
      <dt>Duration</dt><dd>${run.ended_at ? duration(ms(run.started_at || run.created_at, run.ended_at)) : "still going"}</dd>
      ${run.attempt ? html`<dt>Function attempt</dt><dd>${run.attempt + 1}</dd>` : null}
      ${run.replay_of ? html`<dt>Replay of</dt><dd><a data-testid="replay-of" href=${href(`/runs/${run.replay_of}`)}><code>${run.replay_of}</code></a></dd>` : null}
      ${run.replays && run.replays.length ? html`<dt>Replayed as</dt><dd>${run.replays.map((r) => html`<a data-testid="replayed-as" href=${href(`/runs/${r}`)}><code>${r}</code></a> `)}</dd>` : null}
      ${run.held_reason && run.status !== "QUEUED" ? html`<dt>Waited for</dt><dd data-testid="held-reason">${`flow control: ${run.held_reason} (queued ${duration(ms(run.created_at, run.started_at))})`}</dd>` : null}
      ${run.parent ? html`<dt>Invoked by</dt><dd><a data-testid="parent-run" href=${href(`/runs/${run.parent.run_id}`)}><code>${run.parent.run_id}</code></a> at step <code>${run.parent.step_id}</code></dd>` : null}
    </dl>
    ${run.reason ? html`<div class="notice" data-testid="reason">Held by flow control: ${run.reason}</div>` : null}
    ${run.status === "FAILED" || run.status === "CANCELLED" ? html`<div class="panel"><h3>Error</h3><${Stack} error=${run.error} /></div>` : null}
    ${run.status === "COMPLETED" ? html`<div class="panel"><${Json} label="Output" value=${run.output} /></div>` : null}
    <h2>Timeline <span class="muted small">${run.steps.length} step${run.steps.length === 1 ? "" : "s"} · click a step for its attempts, output and errors</span></h2>
    <${Timeline} run=${run} selected=${selected} onSelect=${setSelected} />
    ${step ? html`<${StepDetail} run=${run} step=${step} onReplay=${replay} />` : null}
    <h2>Trigger event${(run.events || []).length === 1 ? "" : "s"}</h2>
    ${(run.events || []).map((e) => html`<details class="panel" open=${run.events.length === 1}>
      <summary><code>${e.name}</code> <a href=${href("/events", { id: e.id })}><code class="small">${e.id}</code></a>
        <span class="muted small"> ${stamp(e.received_at)}</span></summary>
      <${Json} value=${e.data} /></details>`)}
    ${(run.events || []).length ? null : html`<p class="muted">No trigger event (a cron tick or a replay without one).</p>`}
  </section>`;
}
