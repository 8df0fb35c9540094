// A run's timeline: one bar per step on a shared time axis. A retried step shows each
// attempt as its own segment with the backoff between them; sleeps and waits run to
// their wake time or resolution (dashed while pending); time spent queued is a row of its
// own, with flow control's reason. Rows are buttons: Enter opens the step's details.
import { useEffect, useRef, useState } from "preact/hooks";
import { duration, html, ms } from "./ui.js";

// Long runs render only the rows near the screen (fixed 28 px rows between two spacers),
// so a 1,000-step timeline costs what 60 rows cost; short ones render every row.
const ROW = 28;
const WINDOW_FROM = 150;
const SLACK = 25;

function useWindow(count, ref) {
  const all = count <= WINDOW_FROM;
  const [range, setRange] = useState([0, all ? count : Math.min(count, 60)]);
  useEffect(() => {
    if (all) {
      setRange([0, count]);
      return undefined;
    }
    const update = () => {
      const el = ref.current;
      if (!el) return;
      const top = el.getBoundingClientRect().top;
      const first = Math.max(0, Math.floor(-top / ROW) - SLACK);
      const last = Math.min(count, Math.ceil((window.innerHeight - top) / ROW) + SLACK);
      setRange((r) => (r[0] === first && r[1] === last ? r : [first, last]));
    };
    update();
    window.addEventListener("scroll", update, { passive: true });
    window.addEventListener("resize", update);
    return () => {
      window.removeEventListener("scroll", update);
      window.removeEventListener("resize", update);
    };
  }, [count, all]);
  return { all, range };
}

const t = (iso) => (iso ? new Date(iso).getTime() : null);

// Where each step's bar starts and ends; pending bars end at "now" (or the wake time).
export function spans(run, now) {
  return run.steps.map((s) => {
    const start = t(s.started_at);
    let end = t(s.ended_at);
    let pending = false;
    if (end === null) {
      pending = true;
      const until = s.op === "sleep" ? t(s.wake_at) : s.wait ? t(s.wait.resolved_at) || t(s.wait.timeout_at) : null;
      end = Math.max(start, Math.min(until || now, now));
    }
    return { step: s, start, end, pending };
  });
}

export function axis(run, rows, now) {
  const starts = [t(run.created_at), ...rows.map((r) => r.start)].filter((x) => x !== null);
  const ends = [t(run.ended_at), ...rows.map((r) => r.end)].filter((x) => x !== null);
  const t0 = Math.min(...starts);
  let t1 = Math.max(...ends, run.ended_at ? t0 : now);
  if (t1 - t0 < 1) t1 = t0 + 1;
  return { t0, t1 };
}

function pos(x, { t0, t1 }) {
  return ((x - t0) / (t1 - t0)) * 100;
}

function Bar({ from, to, range, cls, title }) {
  const left = pos(from, range);
  const width = Math.max(pos(to, range) - left, 0);
  return html`<span class="bar ${cls}" title=${title} style=${`left:${left}%;width:max(${width}%, 3px)`}></span>`;
}

function segments(row, range) {
  const { step } = row;
  const history = step.attempt_history || [];
  if (history.length > 1) {
    const out = [];
    history.forEach((a, i) => {
      const from = t(a.started_at) || row.start;
      const to = t(a.ended_at) || row.end;
      out.push(html`<${Bar} key=${`a${i}`} from=${from} to=${to} range=${range}
        cls=${a.status === "COMPLETED" ? "ok" : "failed"} title=${`attempt ${a.attempt + 1}: ${duration(to - from)}`} />`);
      const next = history[i + 1];
      if (next) {
        out.push(html`<${Bar} key=${`b${i}`} from=${to} to=${t(next.started_at) || to} range=${range}
          cls="backoff" title=${`backoff ${duration((t(next.started_at) || to) - to)}`} />`);
      }
    });
    if (step.status === "RETRYING" && history.length) {
      const last = history[history.length - 1];
      out.push(html`<${Bar} key="wait" from=${t(last.ended_at)} to=${t(last.retry_at) || row.end}
        range=${range} cls="backoff pending" title="next attempt due" />`);
    }
    return out;
  }
  const cls = { COMPLETED: "ok", FAILED: "failed", RETRYING: "failed", SLEEPING: "sleep", WAITING: "wait" }[step.status] || "ok";
  const kind = step.op === "sleep" ? "sleep" : step.op === "wait" || step.op === "invoke" ? "wait" : cls;
  return html`<${Bar} from=${row.start} to=${row.end} range=${range}
    cls=${`${kind} ${step.status === "FAILED" ? "failed" : ""} ${row.pending ? "pending" : ""}`}
    title=${`${step.id}: ${duration(row.end - row.start)}`} />`;
}

function note(step) {
  if (step.op === "sleep") return step.ended_at ? "woke" : `until ${new Date(step.wake_at).toLocaleTimeString()}`;
  if (step.wait) {
    const by = step.wait.resolved_by;
    return by ? `by ${by}` : `for ${step.wait.event}`;
  }
  if (step.attempts > 1) return `${step.attempts} attempts`;
  return "";
}

export function Timeline({ run, selected, onSelect }) {
  const box = useRef(null);
  const { all, range: [first, last] } = useWindow(run.steps.length, box);
  const now = Date.now();
  const rows = spans(run, now);
  const range = axis(run, rows, now);
  const total = range.t1 - range.t0;
  const queuedTo = t(run.started_at) || (run.status === "QUEUED" ? now : null);
  // Why flow control held it: now (reason, while QUEUED) or before it started (held_reason).
  const why = run.reason || run.held_reason;
  return html`<div class="timeline" data-testid="timeline" data-steps=${rows.length}>
    <div class="tl-axis"><span class="tl-label"></span><span class="tl-track">
      ${[0, 0.25, 0.5, 0.75, 1].map((f) => html`<span class="tick" style=${`left:${f * 100}%`}>${duration(total * f)}</span>`)}
    </span><span class="tl-dur"></span></div>
    ${queuedTo && queuedTo - t(run.created_at) > 0 ? html`<div class="tl-row queued" data-testid="queued-row">
      <span class="tl-label">queued${why ? html`<span class="muted small" data-testid="queued-reason"> — ${why}</span>` : null}</span>
      <span class="tl-track"><${Bar} from=${t(run.created_at)} to=${queuedTo} range=${range} cls="queued"
        title=${why ? `held by flow control: ${why}` : "waiting to start"} /></span>
      <span class="tl-dur">${duration(queuedTo - t(run.created_at))}</span></div>` : null}
    <div ref=${box} class=${all ? "" : "tl-window"}>
    ${all ? null : html`<div style=${`height:${first * ROW}px`}></div>`}
    ${rows.slice(first, last).map((row) => {
      const s = row.step;
      return html`<button type="button" key=${s.id} class="tl-row ${selected === s.id ? "selected" : ""}"
          data-testid="timeline-row" data-step=${s.id} aria-pressed=${selected === s.id}
          onClick=${() => onSelect(selected === s.id ? null : s.id)}>
        <span class="tl-label"><span class="op op-${s.op}">${s.op}</span> ${s.id}</span>
        <span class="tl-track">${segments(row, range)}</span>
        <span class="tl-dur"><span data-testid="step-duration" data-ms=${ms(s.started_at, s.ended_at) ?? ""}>${duration(row.end - row.start)}</span>
          <span class="muted small"> ${note(s)}</span></span>
      </button>`;
    })}
    ${all ? null : html`<div style=${`height:${(rows.length - last) * ROW}px`}></div>`}
    </div>
    ${rows.length ? null : html`<p class="empty">No step has run yet.</p>`}
  </div>`;
}
