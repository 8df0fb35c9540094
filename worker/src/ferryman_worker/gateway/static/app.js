// The Ferryman console: a small Preact + htm app over the public REST API.
// Pages: functions, a function, runs, a run (timeline), events, webhooks. See docs/console.md.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { getToken, onAuth, setToken } from "./js/api.js";
import { EventsPage } from "./js/events.js";
import { FunctionPage, FunctionsPage } from "./js/functions.js";
import { href, navigate, useRoute } from "./js/router.js";
import { RunPage } from "./js/run.js";
import { RunsPage } from "./js/runs.js";
import { Toasts, html } from "./js/ui.js";
import { WebhookPage, WebhooksPage } from "./js/webhooks.js";

function TokenDialog({ state, onDone }) {
  const input = useRef(null);
  const [value, setValue] = useState("");
  const [remember, setRemember] = useState(false);
  useEffect(() => input.current && input.current.focus(), []);
  const submit = (e) => {
    e.preventDefault();
    setToken(value.trim(), remember);
    onDone();
  };
  return html`<div class="backdrop"><form class="dialog" role="dialog" aria-modal="true" aria-label="Sign in"
      onSubmit=${submit} data-testid="token-dialog">
    <h2>Sign in to Ferryman</h2>
    <p>${state.hadToken ? "The gateway refused the token: " : "The gateway needs an API token: "}<span class="muted">${state.message}</span></p>
    <label>API token <input ref=${input} type="password" autocomplete="current-password" data-testid="token-input"
      value=${value} onInput=${(e) => setValue(e.target.value)} required /></label>
    <label class="check"><input type="checkbox" checked=${remember} onChange=${(e) => setRemember(e.target.checked)} />
      Remember on this device (otherwise until this tab closes)</label>
    <div class="dialog-actions"><button type="submit" class="primary" data-testid="token-submit">Sign in</button></div>
  </form></div>`;
}

function Page({ route }) {
  const { path, params } = route;
  let m;
  if (path === "/" || path === "/functions") return html`<${FunctionsPage} />`;
  if ((m = path.match(/^\/functions\/(.+)$/))) return html`<${FunctionPage} id=${decodeURIComponent(m[1])} />`;
  if (path === "/runs") return html`<${RunsPage} params=${params} />`;
  if ((m = path.match(/^\/runs\/(.+)$/))) return html`<${RunPage} key=${m[1]} id=${decodeURIComponent(m[1])} />`;
  if (path === "/events") return html`<${EventsPage} params=${params} />`;
  if (path === "/webhooks") return html`<${WebhooksPage} />`;
  if ((m = path.match(/^\/webhooks\/(.+)$/))) return html`<${WebhookPage} key=${m[1]} name=${decodeURIComponent(m[1])} />`;
  return html`<section><h1>Not found</h1><p>No page <code>${path}</code>. <a href="#/">Functions</a></p></section>`;
}

function App() {
  const route = useRoute();
  const [auth, setAuth] = useState({ needed: false });
  const [theme, setTheme] = useState(document.documentElement.dataset.theme || "light");
  const [, force] = useState(0);
  // Each sign-in remounts the page, so it asks the API again at once with the new token
  // (rather than at its next poll, up to 5 s later).
  const [signIns, setSignIns] = useState(0);
  useEffect(() => onAuth(setAuth), []);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("ferryman.theme", theme);
  }, [theme]);
  useEffect(() => {
    // Single-key shortcuts when not typing: f functions, r runs, e events, w webhooks, t theme.
    const keys = { f: "/", r: "/runs", e: "/events", w: "/webhooks" };
    const handler = (e) => {
      const tag = (e.target.tagName || "").toLowerCase();
      if (e.ctrlKey || e.metaKey || e.altKey || ["input", "textarea", "select"].includes(tag)) return;
      if (document.querySelector(".backdrop")) return;
      if (keys[e.key]) navigate(keys[e.key]);
      if (e.key === "t") setTheme((th) => (th === "dark" ? "light" : "dark"));
    };
    window.addEventListener("keydown", handler);
    return () => window.removeEventListener("keydown", handler);
  }, []);
  const section = route.path.split("/")[1] || "functions";
  const link = (name, to, label) => html`<a href=${href(to)} class=${section === name ? "active" : ""}
    aria-current=${section === name ? "page" : undefined}>${label}</a>`;
  return html`<div class="shell">
    <header class="top">
      <a class="brand" href="#/">Ferryman</a>
      <nav>${link("functions", "/", "Functions")}${link("runs", "/runs", "Runs")}${link("events", "/events", "Events")}${link("webhooks", "/webhooks", "Webhooks")}</nav>
      <span class="spacer"></span>
      ${getToken() ? html`<button type="button" class="link" onClick=${() => { setToken(""); force((n) => n + 1); }}>Sign out</button>` : null}
      <button type="button" class="link" data-testid="theme" aria-label="Switch theme"
        onClick=${() => setTheme(theme === "dark" ? "light" : "dark")}>${theme === "dark" ? "☀ Light" : "☾ Dark"}</button>
    </header>
    <main><${Page} key=${signIns} route=${route} /></main>
    <footer class="muted small">Keys: <kbd>f</kbd> functions · <kbd>r</kbd> runs · <kbd>e</kbd> events · <kbd>w</kbd> webhooks · <kbd>t</kbd> theme · the console reads the REST API under <a href="/v1/runs">/v1</a></footer>
    ${auth.needed ? html`<${TokenDialog} state=${auth} onDone=${() => { setAuth({ needed: false }); setSignIns((n) => n + 1); }} />` : null}
    <${Toasts} />
  </div>`;
}

const root = document.getElementById("app");
root.textContent = ""; // the "Loading…" placeholder
render(html`<${App} />`, root);
