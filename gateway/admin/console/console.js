// Panorama admin console: one plain ES module, no build step. It talks to the JSON admin API
// under /admin/api with the admin's bearer token (kept in sessionStorage for this tab only).
// Every page is built with DOM calls (never innerHTML), so names and values coming from the
// configuration or the sources are shown as text.

const API = "/admin/api";
const TOKEN_KEY = "panorama.admin.token";
const KINDS = ["postgres", "mariadb", "mysql", "sqlite", "crm"];
// Connection settings a new connector of each kind usually needs (prefilled, all editable).
const KIND_KEYS = {
  sqlite: ["path"],
  postgres: ["host", "port", "user", "password", "database"],
  mariadb: ["host", "port", "user", "password", "database"],
  mysql: ["host", "port", "user", "password", "database"],
  crm: ["base_url", "token"],
};
const SECRET_KEY = /pass(word)?|secret|token|api_?key|credential/i;
const DEFAULT_QUERY = `{
  customers(first: 3) {
    edges { node { id displayName emails { address } phones { number } } }
  }
}`;

const state = { version: null, flash: null, ticket: 0 };

// ------------------------------------------------------------------------------------ DOM help

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [key, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (key === "class") el.className = v;
    else if (key === "text") el.textContent = v;
    else if (key === "value") value = v;
    else if (key.startsWith("on") && typeof v === "function") el.addEventListener(key.slice(2), v);
    else if (key === "checked" || key === "disabled" || key === "hidden" || key === "selected") el[key] = Boolean(v);
    else el.setAttribute(key, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  if (value !== undefined) el.value = value;
  return el;
}

const $ = (id) => document.getElementById(id);

/** Replace an element's children; like h(), skips null/false and flattens arrays. */
function put(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
  return el;
}

function help(...text) {
  return h("p", { class: "help" }, ...text);
}

/** A labelled form control with its hint and error elements (ids: NAME, NAME-hint, NAME-error). */
function field({ name, label, type = "text", value, hint, options, required, rows, placeholder,
                 attrs = {}, hideLabel = false }) {
  const describedBy = [hint ? `${name}-hint` : null, `${name}-error`].filter(Boolean).join(" ");
  const common = { id: name, name, "aria-describedby": describedBy, required, placeholder,
                   "aria-required": required ? "true" : null, ...attrs };
  let control;
  if (type === "select") {
    control = h("select", common, (options || []).map(([v, text]) => h("option", { value: v }, text)));
    if (value !== undefined && value !== null) ensureOption(control, String(value));
  } else if (type === "textarea") {
    control = h("textarea", { ...common, rows: rows || 8, spellcheck: "false" });
    control.value = value ?? "";
  } else {
    control = h("input", { ...common, type, value: value ?? "" });
  }
  return h("div", { class: "field" },
    h("label", { for: name, class: hideLabel ? "visually-hidden" : null }, label),
    control,
    hint ? h("span", { class: "hint", id: `${name}-hint` }, hint) : null,
    h("span", { class: "field-error", id: `${name}-error` }));
}

function ensureOption(select, value, label) {
  if (value && ![...select.options].some((o) => o.value === value)) {
    select.append(h("option", { value }, label || `${value} (current)`));
  }
  select.value = value;
}

function reasonField() {
  return h("div", { class: "reason-field" }, field({
    name: "reason", label: "Reason for this change", required: true,
    hint: "Required: it is kept in the history with your name.",
    placeholder: "e.g. ticket 412",
  }));
}

function readReason(scope) {
  const input = scope.querySelector('[name="reason"]');
  const reason = input.value.trim();
  if (!reason) {
    setFieldError("reason", "Say why you make this change (it goes into the history).");
    input.focus();
    return null;
  }
  setFieldError("reason", "");
  return reason;
}

function setFieldError(name, message) {
  const input = $(name);
  const slot = $(`${name}-error`);
  if (slot) slot.textContent = message;
  if (input) {
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

function clearFieldErrors(root) {
  for (const slot of root.querySelectorAll(".field-error")) slot.textContent = "";
  for (const input of root.querySelectorAll('[aria-invalid="true"]')) input.removeAttribute("aria-invalid");
}

async function busy(button, work) {
  const was = button.disabled;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = was;
    button.removeAttribute("aria-busy");
  }
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

// ------------------------------------------------------------------------------------ messages

function clearBanners() {
  $("alert").replaceChildren();
  $("messages").replaceChildren();
}

function say(text, kind = "ok") {
  $("messages").replaceChildren(h("p", { class: `message ${kind}` }, text));
}

function alertBanner(kind, ...content) {
  const banner = h("div", { class: `banner ${kind}`, role: "alert" }, ...content);
  $("alert").replaceChildren(banner);
  return banner;
}

function problemText(p) {
  const where = p.location || [p.kind, p.name, p.field].filter(Boolean).join(" ");
  return where ? `${where}: ${p.message}` : p.message;
}

/** The field path of a problem: its `field`, else its location less "sources.NAME." and the like. */
function problemField(p) {
  if (p.field) return p.field;
  if (!p.location) return "";
  const parts = p.location.split(".");
  return ["sources", "policies", "roles", "mappings", "connectors"].includes(parts[0])
    ? parts.slice(2).join(".") : p.location;
}

/**
 * The control a problem's field names: the field itself, else the only control under it (a
 * problem about "connection" of a connector whose only setting is its path goes next to the
 * path), else the field's own error slot (e.g. the connection fieldset's).
 */
function controlFor(name, scopes) {
  if (!name) return "";
  const isControl = (el) => el && ["INPUT", "SELECT", "TEXTAREA"].includes(el.tagName);
  if (isControl($(name))) return name;
  const inside = scopes.flatMap((s) => [...s.root.querySelectorAll("input[id], select[id], textarea[id]")])
    .filter((el) => el.id.startsWith(`${name}.`) && $(`${el.id}-error`));
  if (inside.length === 1) return inside[0].id;
  return name;
}

/**
 * Put each problem next to the control it names. ``scopes`` are {kind, name, root} for the
 * parts of the page that edit one configuration item; problems that match no control are
 * listed in the banner at the top. Returns how many were placed next to a field.
 */
function showProblems(problems, scopes, heading) {
  for (const scope of scopes) clearFieldErrors(scope.root);
  const unplaced = [];
  let placed = 0;
  let first = null;
  for (const p of problems || []) {
    const name = controlFor(problemField(p), scopes);
    const scope = scopes.find((s) => (!p.kind || !s.kind || p.kind === s.kind)
      && (!p.name || !s.name || p.name === s.name() )
      && name && $(name) && s.root.contains($(name)) && $(`${name}-error`));
    if (!scope) {
      unplaced.push(p);
      continue;
    }
    const slot = $(`${name}-error`);
    slot.textContent = slot.textContent ? `${slot.textContent} ${p.message}` : p.message;
    $(name).setAttribute("aria-invalid", "true");
    first = first || $(name);
    placed += 1;
  }
  const count = (problems || []).length;
  const title = heading || `${count} problem${count === 1 ? "" : "s"} in this change`;
  alertBanner("error",
    h("strong", {}, placed ? `${title} (marked next to the fields below).` : `${title}.`),
    unplaced.length ? h("ul", { id: "problem-list" }, unplaced.map((p) => h("li", {}, problemText(p)))) : null);
  if (first) first.focus();
  return placed;
}

class ApiError extends Error {
  constructor(status, body, version) {
    const error = (body && body.error) || {};
    super(error.message || (status ? `The gateway answered ${status}.` : "The gateway did not answer."));
    this.status = status;
    this.code = error.code || (status ? String(status) : "network");
    this.problems = error.problems || [];
    this.version = body?.version ?? error.version ?? error.currentVersion ?? version ?? null;
    this.handled = false;
  }
}

/** Show an API error: a conflict, problems next to fields (given scopes), or a banner. */
async function showError(err, scopes = []) {
  if (!(err instanceof ApiError)) {
    alertBanner("error", `The console hit a bug: ${err.message}`);
    console.error(err);
    return;
  }
  if (err.handled) return;
  if (err.status === 409) {
    let now = err.version;
    if (now === null || now === undefined || Number(now) === Number(state.version)) {
      try { now = (await api("GET", "/status")).version; } catch { /* keep what we know */ }
    }
    alertBanner("conflict",
      h("span", { id: "conflict-message" },
        `Someone else changed the configuration (now version ${now ?? "unknown"}); reload to see their change.`),
      h("button", { type: "button", class: "secondary", id: "reload", onclick: () => render() }, "Reload"));
    $("reload").focus();
    return;
  }
  if (err.problems.length) {
    showProblems(err.problems, scopes, err.message);
    return;
  }
  alertBanner("error", `${err.message} (${err.code})`);
}

// ------------------------------------------------------------------------------------ the API

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function setVersion(version) {
  if (version === null || version === undefined || version === "") return;
  state.version = Number(version);
  const slot = $("config-version");
  slot.textContent = `Config version ${state.version}`;
  slot.hidden = false;
}

async function api(method, path, body, { ifMatch } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (ifMatch !== undefined && ifMatch !== null) headers["If-Match"] = `"${ifMatch}"`;
  let response;
  try {
    response = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, { error: { code: "network", message: `The gateway did not answer (${e.message}).` } });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  const tag = /(\d+)/.exec(response.headers.get("ETag") || "");
  const tagVersion = tag ? Number(tag[1]) : null;
  if (response.ok) {
    setVersion(data?.version ?? tagVersion);
    return data || {};
  }
  if (!data || !data.error) {
    data = { error: { code: String(response.status), message: text.slice(0, 300) || `The gateway answered ${response.status}.` } };
  }
  const err = new ApiError(response.status, data, tagVersion);
  if (response.status === 401 || response.status === 403) {
    err.handled = true;
    signOut(`${err.message} (${response.status === 401 ? "not signed in" : "not allowed"}). Sign in with an admin token.`);
  }
  throw err;
}

// ------------------------------------------------------------------------------------ routing

const ROUTES = [
  [/^\/sources$/, pageSources, "sources"],
  [/^\/connectors\/new$/, () => pageConnector(null), "sources"],
  [/^\/connectors\/(.+)$/, pageConnector, "sources"],
  [/^\/mappings\/(.+)$/, pageMapping, "sources"],
  [/^\/policies$/, pagePolicies, "policies"],
  [/^\/history$/, pageHistory, "history"],
  [/^\/history\/(\d+)$/, pageHistoryEntry, "history"],
];

function go(hash, flash) {
  if (flash) state.flash = flash;
  if (location.hash === hash) render();
  else location.hash = hash;
}

function view(title) {
  const main = $("main");
  const section = h("div", { class: "view" });
  main.replaceChildren(h("h1", { id: "page-title" }, title), section);
  document.title = `${title} · Panorama admin`;
  return section;
}

async function render(options = {}) {
  const ticket = ++state.ticket;
  const main = $("main");
  main.setAttribute("aria-busy", "true");
  try {
    await draw(ticket, options);
  } finally {
    if (ticket === state.ticket) main.setAttribute("aria-busy", "false");
  }
}

async function draw(ticket, { focus = false } = {}) {
  clearBanners();
  if (state.flash) {
    say(state.flash);
    state.flash = null;
  }
  if (!token()) {
    pageSignIn();
    return;
  }
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  const path = decodeURIComponent((location.hash || "").replace(/^#/, "")) || "/sources";
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  for (const link of document.querySelectorAll("nav a")) {
    if (route && link.dataset.section === route[2]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!route) {
    const body = view("Page not found");
    body.append(help("There is no such page. ", h("a", { href: "#/sources" }, "Go to the sources.")));
    return;
  }
  const args = path.match(route[0]).slice(1);
  try {
    await route[1](...args);
  } catch (err) {
    if (ticket !== state.ticket || err.handled) return;
    const body = view("Could not load this page");
    body.append(help("The gateway did not give what this page needs; the message above says why."),
      h("div", { class: "actions" }, h("button", { type: "button", id: "retry", onclick: () => render() }, "Try again"),
        h("a", { class: "button secondary", href: "#/sources" }, "Go to the sources")));
    await showError(err);
  }
  if (focus && ticket === state.ticket) $("page-title")?.focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.version = null;
  $("config-version").hidden = true;
  render().then(() => { if (message) alertBanner("error", message); });
}

// ------------------------------------------------------------------------------------ sign-in

function pageSignIn() {
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("config-version").hidden = true;
  const body = view("Sign in");
  const form = h("form", { class: "signin", id: "signin-form", novalidate: true },
    help("Paste an admin token. ", h("code", {}, "panorama demo"), " prints one; ",
      h("code", {}, "panorama token --role admin"), " mints more. The token stays in this browser tab only ",
      "and is forgotten when you sign out or close the tab."),
    field({ name: "token", label: "Admin token", type: "textarea", rows: 4, required: true,
            attrs: { autocomplete: "off" } }),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "sign-in" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = form.elements.token.value.trim().replace(/^Bearer\s+/i, "");
    if (!value) {
      setFieldError("token", "Paste the token first.");
      form.elements.token.focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    try {
      await api("GET", "/status");
    } catch (err) {
      await showError(err);
      return;
    }
    if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = "#/sources";
    state.flash = "Signed in.";
    render({ focus: true });
  });
  body.append(form);
  form.elements.token.focus();
}

// ------------------------------------------------------------------------------------ sources

function stateBadge(source) {
  const value = source.state || "unknown";
  const known = ["ready", "breaker-open", "waiting"];
  const cls = known.includes(value) ? value : "error";
  const label = known.includes(value) ? value : (value === "error" ? "error" : `error: ${value}`);
  return h("span", { class: `state ${cls}`, title: source.lastError || null }, label);
}

function latency(ms) {
  return ms === null || ms === undefined ? "—" : `${Number(ms).toFixed(1)} ms`;
}

async function pageSources() {
  const data = await api("GET", "/status");
  const body = view("Sources");
  body.append(help(
    "Every database and CRM the gateway reads, live. State is ready, breaker-open (too many ",
    "failures: calls pause for a while), waiting (not answered yet) or an error code. ",
    "Test connection asks the source now; edit a connector for how to reach it, a mapping for ",
    "which of its columns make a customer."));
  const actions = h("div", { class: "actions" },
    h("button", { type: "button", id: "add-source", onclick: () => go("#/connectors/new") }, "Add a source"),
    h("button", { type: "button", class: "secondary", id: "refresh", onclick: () => render() }, "Refresh"));
  const sources = data.sources || [];
  if (!sources.length) {
    body.append(actions, h("p", { class: "empty" }, "No source is configured yet."));
    return;
  }
  const rows = sources.map((s) => {
    const result = h("span", { class: "test-result", id: `test-${s.name}`, "aria-live": "polite" });
    const test = h("button", { type: "button", class: "secondary small", "aria-label": `Test connection to ${s.name}`,
      "data-source": s.name }, "Test connection");
    test.addEventListener("click", () => busy(test, async () => {
      result.className = "test-result";
      result.textContent = "testing…";
      try {
        const r = await api("POST", "/test", { name: s.name });
        result.className = `test-result ${r.ok ? "ok" : "bad"}`;
        result.textContent = r.ok ? `OK in ${latency(r.latencyMs)}` : `Failed: ${r.error || "no answer"}`;
      } catch (err) {
        result.textContent = "";
        await showError(err);
      }
    }));
    return h("tr", { "data-source": s.name },
      h("th", { scope: "row" }, s.name),
      h("td", {}, s.kind || "—"),
      h("td", {}, s.shop || "—"),
      h("td", {}, s.region || "—"),
      h("td", { class: "state-cell" }, stateBadge(s),
        s.lastError ? h("div", { class: "hint" }, s.lastError) : null),
      h("td", { class: "num" }, latency(s.latencyMs)),
      h("td", {}, test, " ", result),
      h("td", {},
        h("a", { href: `#/connectors/${encodeURIComponent(s.name)}`, "aria-label": `Edit connector ${s.name}` }, "Connector"),
        " · ",
        h("a", { href: `#/mappings/${encodeURIComponent(s.name)}`, "aria-label": `Edit mapping ${s.name}` }, "Mapping")));
  });
  body.append(actions, h("table", { id: "sources-table" },
    h("caption", { class: "visually-hidden" }, "Configured sources and their state"),
    h("thead", {}, h("tr", {}, ["Name", "Kind", "Shop", "Region", "State", "Latency", "Test", "Edit"]
      .map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows)));
}

// ------------------------------------------------------------------------------------ connectors

function isSecret(value) {
  return value !== null && typeof value === "object" && value.secret === true;
}

/** The connection settings as editable rows: key, value, secret (with the API's original). */
function connectionEditor(connection, { isNew }) {
  let seq = 0;
  const list = h("div", { class: "conn-rows", id: "connection-rows" });
  const rows = [];

  function addRow(key = "", original = undefined, focus = false) {
    const n = ++seq;
    const secretOriginal = isSecret(original);
    const row = { n, original, secretOriginal };
    const keyInput = h("input", { id: `connection-key-${n}`, name: "connection-key", value: key,
      autocomplete: "off", spellcheck: "false" });
    let shown = "";
    if (!secretOriginal && original !== undefined && original !== null) {
      shown = typeof original === "object" ? JSON.stringify(original) : String(original);
    }
    const valueInput = h("input", { type: secretOriginal || SECRET_KEY.test(key) && isNew ? "password" : "text",
      value: shown, autocomplete: "off", spellcheck: "false" });
    const hint = h("span", { class: "hint" });
    const error = h("span", { class: "field-error" });
    const valueLabel = h("label", { class: "visually-hidden" });
    const secretBox = h("input", { type: "checkbox", id: `connection-secret-${n}`,
      checked: secretOriginal || (isNew && SECRET_KEY.test(key)), disabled: secretOriginal });
    if (secretOriginal) {
      valueInput.placeholder = original.set ? "set — leave empty to keep" : "not set";
      hint.textContent = original.ref ? `Now a reference: ${original.ref}` : (original.set ? "Stored encrypted." : "");
    }
    function rename() {
      const k = keyInput.value.trim();
      const path = k ? `connection.${k}` : `connection.#${n}`;
      valueInput.id = path;
      valueInput.name = path;
      error.id = `${path}-error`;
      hint.id = `${path}-hint`;
      valueInput.setAttribute("aria-describedby", `${path}-hint ${path}-error`);
      valueLabel.htmlFor = path;
      valueLabel.textContent = k ? `Value of ${k}` : `Value of connection setting ${n}`;
    }
    keyInput.addEventListener("input", rename);
    secretBox.addEventListener("change", () => { valueInput.type = secretBox.checked ? "password" : "text"; });
    rename();
    row.key = keyInput;
    row.value = valueInput;
    row.secret = secretBox;
    row.el = h("div", { class: "conn-row", "data-row": n },
      h("div", { class: "field" },
        h("label", { for: keyInput.id, class: "visually-hidden" }, `Name of connection setting ${n}`), keyInput),
      h("div", { class: "field" }, valueLabel, valueInput, hint, error),
      h("span", { class: "secret-toggle" }, secretBox, " ", h("label", { for: secretBox.id }, "Secret")),
      h("button", { type: "button", class: "danger small", "aria-label": `Remove connection setting ${n}`,
        onclick: () => {
          rows.splice(rows.indexOf(row), 1);
          row.el.remove();
          say(`Removed the connection setting ${keyInput.value || n}.`, "info");
        } }, "Remove"));
    rows.push(row);
    list.append(row.el);
    if (focus) keyInput.focus();
    return row;
  }

  for (const [key, value] of Object.entries(connection || {})) addRow(key, value);

  const el = h("fieldset", { id: "connection" },
    h("legend", {}, "Connection"),
    help("How to reach the source: for SQLite a ", h("code", {}, "path"), " (relative to the config file); ",
      "for PostgreSQL and MariaDB host, port, user, password, database; for the CRM base_url and token. ",
      "A secret is stored encrypted; type ", h("code", {}, "${env:NAME}"), " to read it from the environment instead."),
    h("div", { class: "conn-row conn-head", "aria-hidden": "true" },
      h("span", { class: "label" }, "Setting"), h("span", { class: "label" }, "Value"), h("span"), h("span")),
    list,
    h("span", { class: "field-error", id: "connection-error" }),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary small", id: "add-connection-row",
        onclick: () => addRow("", undefined, true) }, "Add a connection setting")));

  return {
    el,
    prefill(kind) {
      const filled = rows.some((r) => r.key.value.trim() || r.value.value.trim());
      if (filled) return;
      for (const r of [...rows]) r.el.remove();
      rows.length = 0;
      for (const key of KIND_KEYS[kind] || []) addRow(key);
    },
    read() {
      const out = {};
      for (const r of rows) {
        const key = r.key.value.trim();
        const text = r.value.value;
        if (!key) continue;
        if (r.secretOriginal) {
          if (text === "") out[key] = r.original;            // unchanged: the server keeps it
          else out[key] = text.startsWith("${") ? text : { value: text };
        } else if (r.secret.checked) {
          if (text !== "") out[key] = text.startsWith("${") ? text : { value: text };
        } else {
          out[key] = typed(text, r.original);
        }
      }
      return out;
    },
  };
}

/** Keep the type a value had: numbers stay numbers, booleans booleans, objects JSON. */
function typed(text, original) {
  const trimmed = text.trim();
  if (typeof original === "number" || (original === undefined && /^-?\d+$/.test(trimmed))) {
    return trimmed !== "" && !Number.isNaN(Number(trimmed)) ? Number(trimmed) : text;
  }
  if (typeof original === "boolean" && /^(true|false)$/i.test(trimmed)) return /^true$/i.test(trimmed);
  if (original !== null && typeof original === "object") {
    try { return JSON.parse(text); } catch { return text; }
  }
  return text;
}

function numberOrText(text) {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  const n = Number(trimmed);
  return Number.isNaN(n) ? trimmed : n;
}

async function pageConnector(name) {
  const isNew = name === null;
  let base = null;
  let original = { connection: {} };
  if (!isNew) {
    const data = await api("GET", `/connectors/${encodeURIComponent(name)}`);
    original = data.item || original;
    base = data.version ?? state.version;
  } else {
    base = (await api("GET", "/status")).version ?? state.version;
  }
  const body = view(isNew ? "Add a source" : `Connector ${name}`);
  body.append(help(isNew
    ? "Say how to reach the new database or CRM, press Introspect to see its tables, pick which columns make a customer, then save both in one change. Nothing changes until you save."
    : "How the gateway reaches this source. Validate checks the change (and tries it live); Test connection and Introspect use what is in the form, not what is saved."));

  const form = h("form", { class: "editor", id: "connector-form", novalidate: true });
  const nameOf = () => (isNew ? form.elements.name.value.trim() : name);
  if (isNew) {
    form.append(field({ name: "name", label: "Name", required: true,
      hint: "Short and unique: letters, digits, _ or -. It names the source in queries (shop filter) and provenance.",
      attrs: { autocomplete: "off", pattern: "[A-Za-z0-9_-]+" } }));
  }
  const kindOptions = [["", "— choose —"], ...KINDS.map((k) => [k, k])];
  form.append(h("div", { class: "grid" },
    field({ name: "kind", label: "Kind", type: "select", options: kindOptions, value: original.kind || "",
      hint: "Which connector reads it." }),
    field({ name: "shop", label: "Shop", value: original.shop, hint: "Shown to people, e.g. Bakery London." }),
    field({ name: "region", label: "Region", value: original.region, hint: "Where the data lives (eu, uk…); region-bound roles read only theirs." }),
    field({ name: "timeout", label: "Timeout (seconds)", type: "number", value: original.timeout,
      attrs: { step: "any", min: "0" }, hint: "Empty: the gateway's default." }),
    field({ name: "pool_size", label: "Pool size", type: "number", value: original.pool_size,
      attrs: { step: "1", min: "1" }, hint: "Connections kept open." }),
    field({ name: "cache_ttl_seconds", label: "Cache time (seconds)", type: "number", value: original.cache_ttl_seconds,
      attrs: { step: "any", min: "0" }, hint: "How long answers may be reused; empty: no cache." }),
    field({ name: "defaults.country", label: "Default country", value: original.defaults?.country,
      hint: "ISO code for phones and addresses without one, e.g. FR." }),
    field({ name: "defaults.currency", label: "Default currency", value: original.defaults?.currency,
      hint: "ISO 4217 code for amounts without one, e.g. EUR." })));
  const connection = connectionEditor(original.connection, { isNew });
  form.append(connection.el);
  if (isNew) {
    form.elements.kind.addEventListener("change", () => connection.prefill(form.elements.kind.value));
  }

  function readConnector() {
    const item = clone(original) || {};
    const f = form.elements;
    if (isNew) item.name = f.name.value.trim(); else item.name = name;
    item.kind = f.kind.value || undefined;
    for (const key of ["shop", "region"]) item[key] = f[key].value.trim() || undefined;
    for (const key of ["timeout", "pool_size", "cache_ttl_seconds"]) item[key] = numberOrText(f[key].value);
    const defaults = { ...(original.defaults || {}) };
    defaults.country = f["defaults.country"].value.trim() || undefined;
    defaults.currency = f["defaults.currency"].value.trim() || undefined;
    item.defaults = Object.values(defaults).some((v) => v !== undefined && v !== null) ? defaults : undefined;
    item.connection = connection.read();
    return JSON.parse(JSON.stringify(item));  // drops the undefined keys
  }

  const tools = h("div", { class: "actions" });
  const introspection = h("section", { id: "introspection", "aria-labelledby": "introspection-title" });
  let mapping = null;
  if (isNew) {
    mapping = mappingEditor(null, nameOf);
    introspection.append(h("h2", { id: "introspection-title" }, "Customer mapping"),
      help("Press Introspect to list the source's tables, then pick the customer table and its columns. ",
        "You can also map transactions and more in the JSON below."),
      mapping.el);
  }

  const scopes = () => [
    { kind: "connector", name: nameOf, root: form },
    ...(mapping ? [{ kind: "mapping", name: nameOf, root: mapping.el }] : []),
  ];
  function changes() {
    const list = [{ op: "put", kind: "connector", name: nameOf(), item: readConnector() }];
    if (mapping && mapping.hasTable()) list.push({ op: "put", kind: "mapping", name: nameOf(), item: mapping.read() });
    return list;
  }
  function checkName() {
    if (!isNew) return true;
    const value = nameOf();
    if (!value) {
      setFieldError("name", "Give the source a name.");
      form.elements.name.focus();
      return false;
    }
    setFieldError("name", "");
    return true;
  }

  const validate = h("button", { type: "button", class: "secondary", id: "validate" }, "Validate");
  validate.addEventListener("click", () => busy(validate, async () => {
    clearBanners();
    if (!checkName()) return;
    try {
      const list = changes();
      const r = await api("POST", "/validate", { changes: list, live: true });
      if (r.valid) {
        for (const s of scopes()) clearFieldErrors(s.root);
        say("Valid: the change has no problems.");
      } else {
        showProblems(r.problems, scopes());
      }
    } catch (err) {
      await showError(err, scopes());
    }
  }));
  const test = h("button", { type: "button", class: "secondary", id: "test-connection" }, "Test connection");
  test.addEventListener("click", () => busy(test, async () => {
    clearBanners();
    try {
      const r = await api("POST", "/test", { item: readConnector() });
      if (r.ok) say(`Connection OK in ${latency(r.latencyMs)}.`);
      else alertBanner("error", `Connection failed: ${r.error || "no answer"}`);
    } catch (err) {
      await showError(err, scopes());
    }
  }));
  const introspect = h("button", { type: "button", class: "secondary", id: "introspect" }, "Introspect");
  introspect.addEventListener("click", () => busy(introspect, async () => {
    clearBanners();
    try {
      const r = await api("POST", "/introspect", { item: readConnector() });
      const count = Object.keys(r.tables || {}).length;
      if (mapping) mapping.setTables(r.tables || {});
      else showTables(introspection, r.tables || {});
      say(`Found ${count} table${count === 1 ? "" : "s"}.`);
    } catch (err) {
      await showError(err, scopes());
    }
  }));
  tools.append(validate, test, introspect);
  if (!isNew) {
    tools.append(h("a", { class: "button secondary", href: `#/mappings/${encodeURIComponent(name)}` }, "Edit its mapping"));
  }
  form.append(tools);
  body.append(form, introspection);

  const save = h("button", { type: "submit", id: "save", form: "connector-form" }, "Save");
  const saveBox = h("fieldset", { class: "save-box" }, h("legend", {}, "Save"),
    help(isNew ? "Adds the connector and its mapping in one change, live, without a restart."
      : "Replaces the connector; the gateway uses it at once."),
    h("div", { class: "actions" }, reasonField(), save));
  body.append(saveBox);
  if (!isNew) {
    const del = deleteButton(`Delete connector ${name}`, async (reason) => {
      await api("DELETE", `/connectors/${encodeURIComponent(name)}`, { reason }, { ifMatch: base });
      go("#/sources", `Deleted ${name} and its mapping (now version ${state.version}).`);
    }, saveBox, scopes);
    saveBox.querySelector(".actions").append(del);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(save, async () => {
      clearBanners();
      if (!checkName()) return;
      const reason = readReason(saveBox);
      if (!reason) return;
      try {
        let list;
        try { list = changes(); } catch (err) {
          if (err instanceof MappingJsonError) { alertBanner("error", err.message); return; }
          throw err;
        }
        if (isNew) {
          await api("POST", "/changes", { reason, changes: list }, { ifMatch: base });
        } else {
          await api("PUT", `/connectors/${encodeURIComponent(name)}`, { item: list[0].item, reason }, { ifMatch: base });
        }
        go("#/sources", `Saved ${nameOf()}: the configuration is now version ${state.version}.`);
      } catch (err) {
        await showError(err, scopes());
      }
    });
  });
}

/** A delete button that asks to be pressed twice and needs the reason from ``scope``. */
function deleteButton(label, action, scope, scopes = () => []) {
  let armed = false;
  const button = h("button", { type: "button", class: "danger", id: "delete" }, "Delete");
  button.setAttribute("aria-label", label);
  button.addEventListener("click", () => busy(button, async () => {
    clearBanners();
    const reason = readReason(scope);
    if (!reason) return;
    if (!armed) {
      armed = true;
      button.textContent = "Press again to delete";
      say(`${label}? Press the button again to confirm.`, "info");
      return;
    }
    armed = false;
    button.textContent = "Delete";
    try {
      await action(reason);
    } catch (err) {
      await showError(err, scopes());
    }
  }));
  return button;
}

// ------------------------------------------------------------------------------------ mappings

class MappingJsonError extends Error {}

const PICKS = [
  ["given_name", "Given name"],
  ["family_name", "Family name"],
  ["email", "E-mail"],
  ["phone", "Phone"],
  ["line1", "Address line 1"],
  ["postcode", "Postcode"],
  ["city", "City"],
  ["country", "Country"],
];
// Which control edits which part of the mapping item (its id is that path).
const PICK_PATH = {
  given_name: "customer.fields.given_name",
  family_name: "customer.fields.family_name",
  email: "customer.fields.emails[0].column",
  phone: "customer.fields.phones[0].column",
  line1: "customer.fields.addresses[0].line1",
  postcode: "customer.fields.addresses[0].postcode",
  city: "customer.fields.addresses[0].city",
  country: "customer.fields.addresses[0].country",
};
const GUESS = {
  key: /^(id|customer_?id|client_?id|.*_id)$/i,
  given_name: /^(first_?name|given_?name|firstname|prenom|vorname|forename)$/i,
  family_name: /^(last_?name|family_?name|lastname|surname|nom|nachname)$/i,
  email: /^(e_?mail|email_?address|mail|courriel)$/i,
  phone: /^(phone|phone_?number|telephone|tel|mobile)$/i,
  line1: /^(address|address_?1|address_?line_?1|line1|street|rue|strasse)$/i,
  postcode: /^(postal_?code|post_?code|zip|zip_?code|code_?postal|plz)$/i,
  city: /^(city|town|ville|stadt)$/i,
  country: /^(country|country_?code|pays|land)$/i,
};
const ADDRESS_PARTS = ["line1", "postcode", "city", "country"];

// A field the mapping sets some other way than from one column (a constant, an expression): the
// picker shows it as such and leaves it alone.
const KEEP = "(set in the JSON)";

function columnOf(value) {
  if (value === undefined || value === null || value === "") return "";
  if (typeof value === "string") return value;
  if (typeof value === "object" && typeof value.column === "string") return value.column;
  return KEEP;
}

/** Set a field to a column, keeping the other keys of an object form ({column, transform…}). */
function setColumn(target, key, column) {
  if (!column) delete target[key];
  else if (target[key] && typeof target[key] === "object" && "column" in target[key]) {
    target[key] = { ...target[key], column };
  } else target[key] = column;
}

function picksOf(item) {
  const c = item?.customer || {};
  const f = c.fields || {};
  const first = (list) => (Array.isArray(list) && list[0] && typeof list[0] === "object" ? list[0] : {});
  const address = first(f.addresses);
  return {
    table: c.table || "", key: c.key || "",
    given_name: columnOf(f.given_name), family_name: columnOf(f.family_name),
    email: columnOf(first(f.emails)), phone: columnOf(first(f.phones)),
    line1: columnOf(address.line1), postcode: columnOf(address.postcode), city: columnOf(address.city),
    country: columnOf(address.country),
  };
}

/** Write one pick into the mapping item, keeping whatever else the item says. */
function applyPick(item, pick, column) {
  if (column === KEEP) return item;
  item.customer = item.customer && typeof item.customer === "object" ? item.customer : {};
  const c = item.customer;
  if (pick === "table" || pick === "key") {
    if (column) c[pick] = column; else delete c[pick];
    return item;
  }
  c.fields = c.fields && typeof c.fields === "object" ? c.fields : {};
  const f = c.fields;
  if (pick === "given_name" || pick === "family_name") {
    setColumn(f, pick, column);
    return item;
  }
  if (pick === "email" || pick === "phone") {
    const list = pick === "email" ? "emails" : "phones";
    const fresh = pick === "email" ? { column, type: "PERSONAL", transform: "email" }
      : { column, type: "PHONE", transform: "phone" };
    const items = Array.isArray(f[list]) ? f[list] : [];
    if (!column) items.shift();
    else if (items[0] && typeof items[0] === "object") items[0] = { ...items[0], column };
    else items.unshift(fresh);
    if (items.length) f[list] = items; else delete f[list];
    return item;
  }
  const items = Array.isArray(f.addresses) ? f.addresses : [];
  const address = items[0] && typeof items[0] === "object" ? items[0] : { type: "HOME" };
  setColumn(address, pick, column);
  const rest = items.slice(1);
  if (ADDRESS_PARTS.some((part) => address[part])) f.addresses = [address, ...rest];
  else if (rest.length) f.addresses = rest;
  else delete f.addresses;
  return item;
}

function newMappingItem() {
  return { customer: { fields: {} }, transactions: [], interactions: [] };
}

function showTables(container, tables) {
  let box = container.querySelector(".tables");
  if (!box) {
    box = h("div", { class: "tables", id: "tables" });
    container.append(box);
  }
  const names = Object.keys(tables).sort((a, b) => a.localeCompare(b));
  put(box,
    h("h3", { id: "tables-title" }, `Tables (${names.length})`),
    names.length ? null : h("p", { class: "empty" }, "The source has no tables."),
    names.map((table) => h("details", { "data-table": table },
      h("summary", {}, `${table} `, h("span", { class: "hint" }, `(${Object.keys(tables[table]).length} columns)`)),
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Column"), h("th", { scope: "col" }, "Type"))),
        h("tbody", {}, Object.entries(tables[table]).map(([col, type]) =>
          h("tr", {}, h("td", {}, col), h("td", {}, String(type)))))))));
}

/**
 * The mapping picker: tables found by introspection, a select per unified field, a read-only
 * preview and the raw JSON (what Save sends). The picker and the JSON follow each other.
 */
function mappingEditor(item, nameOf) {
  let current = item ? clone(item) : newMappingItem();
  current.transactions ??= [];
  current.interactions ??= [];
  let tables = {};
  const tablesBox = h("div", { class: "tables-slot" });
  const preview = h("pre", { id: "mapping-preview", "aria-label": "Mapping preview (read only)", tabindex: "0" });
  const json = field({ name: "mapping-json", label: "Mapping as JSON (what Save sends)", type: "textarea",
    rows: 14, hint: "Edit it for anything the picker does not cover: transactions, interactions, joins, transforms.",
    attrs: { class: "json" } });
  const textarea = json.querySelector("textarea");
  const selects = {};
  const picker = h("div", { class: "picker" });
  const tableField = field({ name: "customer.table", label: "Customer table", type: "select",
    options: [["", "— pick a table —"]], hint: "The table with one row per customer." });
  const keyField = field({ name: "customer.key", label: "Key column", type: "select",
    options: [["", "— pick the key —"]], hint: "Unique per customer, e.g. its id." });
  selects.table = tableField.querySelector("select");
  selects.key = keyField.querySelector("select");
  picker.append(tableField, keyField);
  for (const [pick, label] of PICKS) {
    const f = field({ name: PICK_PATH[pick], label, type: "select", options: [["", "— not mapped —"]] });
    selects[pick] = f.querySelector("select");
    selects[pick].dataset.pick = pick;
    picker.append(f);
  }

  function columnsOf(table) {
    return tables[table] ? Object.entries(tables[table]) : [];
  }
  function fillOptions(select, placeholder, entries, value) {
    put(select, h("option", { value: "" }, placeholder),
      entries.map(([v, type]) => h("option", { value: v }, type ? `${v} (${type})` : v)));
    if (value === KEEP) ensureOption(select, KEEP, "(set in the JSON below)");
    else if (value) ensureOption(select, value);
    else select.value = "";
  }
  function syncPicker() {
    const picks = picksOf(current);
    fillOptions(selects.table, "— pick a table —", Object.keys(tables).sort().map((t) => [t, ""]), picks.table);
    const cols = columnsOf(picks.table);
    fillOptions(selects.key, "— pick the key —", cols, picks.key);
    for (const [pick] of PICKS) fillOptions(selects[pick], "— not mapped —", cols, picks[pick]);
  }
  function show(writeJson = true) {
    const c = current.customer;
    if (c && typeof c === "object" && !Array.isArray(c)) {   // table and key read first
      const { table, key, ...rest } = c;
      current.customer = JSON.parse(JSON.stringify({ table, key, ...rest }));
    }
    preview.textContent = pretty(current);
    if (writeJson) textarea.value = pretty(current);
    setFieldError("mapping-json", "");
  }
  function parseJson() {
    try {
      const value = JSON.parse(textarea.value);
      if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("it must be an object");
      return value;
    } catch (err) {
      throw new MappingJsonError(`The mapping JSON is not valid: ${err.message}`);
    }
  }

  selects.table.addEventListener("change", () => {
    const table = selects.table.value;
    applyPick(current, "table", table);
    // A new table: suggest the columns whose names say what they hold (all can be changed).
    const cols = columnsOf(table).map(([c]) => c);
    const guess = (pick) => cols.find((c) => GUESS[pick].test(c)) || "";
    const keyGuess = cols.find((c) => c.toLowerCase() === `${table.toLowerCase()}id`
      || c.toLowerCase() === `${table.toLowerCase()}_id`) || cols.find((c) => /^id$/i.test(c)) || guess("key");
    applyPick(current, "key", keyGuess);
    for (const [pick] of PICKS) {
      const now = picksOf(current)[pick];
      if (now !== KEEP && !cols.includes(now)) applyPick(current, pick, guess(pick));
    }
    syncPicker();
    show();
  });
  for (const pick of ["key", ...PICKS.map(([p]) => p)]) {
    selects[pick].addEventListener("change", () => {
      applyPick(current, pick, selects[pick].value);
      show();
    });
  }
  textarea.addEventListener("input", () => {
    try {
      current = parseJson();
      show(false);
      syncPicker();
    } catch (err) {
      setFieldError("mapping-json", err.message);
    }
  });

  syncPicker();
  show();
  const el = h("div", { class: "mapping-editor", id: "mapping-editor" },
    tablesBox,
    h("fieldset", { id: "picker" }, h("legend", {}, "Pick the customer columns"),
      help("Leave a field on “not mapped” when the source does not hold it. The address is the customer's HOME address."),
      picker),
    h("h3", { id: "mapping-preview-title" }, "Preview"),
    preview,
    json);
  return {
    el,
    setTables(found) {
      tables = found || {};
      showTables(tablesBox, tables);
      syncPicker();
    },
    hasTable() {
      try { return Boolean(parseJson().customer?.table); } catch { return true; }
    },
    read() {
      return parseJson();
    },
    nameOf,
  };
}

async function pageMapping(name) {
  let item = null;
  let base;
  try {
    const data = await api("GET", `/mappings/${encodeURIComponent(name)}`);
    item = data.item;
    base = data.version ?? state.version;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    base = (await api("GET", "/status")).version ?? state.version;
  }
  const body = view(`Mapping of ${name}`);
  body.append(help(
    "Which table and columns of the source make a customer. Press Introspect to list the tables, ",
    "pick the customer table, its key and a column for each field; the JSON below is what Save ",
    "sends, edit it for transactions, interactions, joins and transforms. ",
    h("a", { href: `#/connectors/${encodeURIComponent(name)}` }, "Edit the connector"), "."));
  if (!item) say("This source has no mapping yet: start from the picker.", "info");
  const mapping = mappingEditor(item, () => name);
  const scopes = () => [{ kind: "mapping", name: () => name, root: body }];
  const introspect = h("button", { type: "button", class: "secondary", id: "introspect" }, "Introspect");
  introspect.addEventListener("click", () => busy(introspect, async () => {
    clearBanners();
    try {
      const r = await api("POST", "/introspect", { name });
      mapping.setTables(r.tables || {});
      const count = Object.keys(r.tables || {}).length;
      say(`Found ${count} table${count === 1 ? "" : "s"}.`);
    } catch (err) {
      await showError(err, scopes());
    }
  }));
  const validate = h("button", { type: "button", class: "secondary", id: "validate" }, "Validate");
  validate.addEventListener("click", () => busy(validate, async () => {
    clearBanners();
    try {
      const r = await api("POST", "/validate", {
        changes: [{ op: "put", kind: "mapping", name, item: mapping.read() }], live: true });
      if (r.valid) { clearFieldErrors(body); say("Valid: the mapping has no problems."); }
      else showProblems(r.problems, scopes());
    } catch (err) {
      if (err instanceof MappingJsonError) alertBanner("error", err.message);
      else await showError(err, scopes());
    }
  }));
  const save = h("button", { type: "button", id: "save" }, "Save");
  const saveBox = h("fieldset", { class: "save-box" }, h("legend", {}, "Save"),
    help("Replaces the mapping; the gateway reads the source this way at once."),
    h("div", { class: "actions" }, reasonField(), save));
  save.addEventListener("click", () => busy(save, async () => {
    clearBanners();
    const reason = readReason(saveBox);
    if (!reason) return;
    try {
      await api("PUT", `/mappings/${encodeURIComponent(name)}`, { item: mapping.read(), reason }, { ifMatch: base });
      go("#/sources", `Saved the mapping of ${name}: the configuration is now version ${state.version}.`);
    } catch (err) {
      if (err instanceof MappingJsonError) alertBanner("error", err.message);
      else await showError(err, scopes());
    }
  }));
  const del = deleteButton(`Delete the mapping of ${name}`, async (reason) => {
    await api("DELETE", `/mappings/${encodeURIComponent(name)}`, { reason }, { ifMatch: base });
    go("#/sources", `Deleted the mapping of ${name} (now version ${state.version}).`);
  }, saveBox, scopes);
  saveBox.querySelector(".actions").append(del);
  body.append(h("div", { class: "actions" }, introspect, validate), mapping.el, saveBox);
}

// ------------------------------------------------------------------------------------ policies

function purposesOf(doc) {
  const p = doc?.purposes;
  if (Array.isArray(p)) return p.map(String);
  if (p && typeof p === "object") return Object.keys(p);
  return [];
}

async function pagePolicies() {
  const data = await api("GET", "/policies");
  const base = data.version ?? state.version;
  const items = data.items || [];
  const body = view("Policies");
  body.append(help(
    "Who may see what: each role's document lists the purposes it may declare and its rules ",
    "(category or Type.field: allow, deny or a mask). Pick a role, edit its JSON, try it with ",
    "Preview before you save: it shows a query's answer under the saved and the edited policy."));

  const roleList = h("ul", { class: "role-list", id: "roles", "aria-label": "Roles" });
  const editor = h("section", { id: "policy-editor", "aria-labelledby": "policy-title" });
  body.append(h("h2", {}, "Roles"), roleList,
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "new-role",
      onclick: () => edit(null) }, "New role")),
    editor);
  let editing = null;   // {name, isNew}

  function listRoles() {
    roleList.replaceChildren(...items.map((it) => h("li", {},
      h("button", { type: "button", class: "small", "data-role": it.name,
        "aria-pressed": editing && !editing.isNew && editing.name === it.name ? "true" : "false",
        onclick: () => edit(it.name) }, it.name))));
    if (!items.length) roleList.append(h("li", { class: "empty" }, "No role yet."));
  }

  function edit(roleName, focus = true) {
    clearBanners();
    const isNew = roleName === null;
    const doc = isNew ? { description: "", inherits: ["staff"], purposes: [], rules: {} }
      : items.find((it) => it.name === roleName)?.item || {};
    editing = { name: roleName, isNew };
    listRoles();
    const roleNameOf = () => (isNew ? $("role-name").value.trim() : roleName);
    const nameField = isNew ? field({ name: "role-name", label: "Role name", required: true,
      hint: "Letters, digits, _ or -; tokens carry it in their role claim." }) : null;
    const json = field({ name: "policy-json", label: isNew ? "Role document (JSON)" : `Document of ${roleName} (JSON)`,
      type: "textarea", rows: 18, value: pretty(doc), attrs: { class: "json" },
      hint: "description, inherits, purposes, rules… as in policies.yaml." });
    const textarea = json.querySelector("textarea");
    const readDoc = () => {
      try {
        const value = JSON.parse(textarea.value);
        if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("it must be an object");
        setFieldError("policy-json", "");
        return value;
      } catch (err) {
        setFieldError("policy-json", `Not valid JSON: ${err.message}`);
        textarea.focus();
        return null;
      }
    };
    const scopes = () => [{ kind: "policy", name: roleNameOf, root: editor }];
    const save = h("button", { type: "button", id: "save" }, "Save");
    const saveBox = h("fieldset", { class: "save-box" }, h("legend", {}, "Save"),
      help("Saves the role; requests use it at once."),
      h("div", { class: "actions" }, reasonField(), save));
    save.addEventListener("click", () => busy(save, async () => {
      clearBanners();
      const role = roleNameOf();
      if (!role) { setFieldError("role-name", "Name the role."); $("role-name").focus(); return; }
      const item = readDoc();
      if (!item) return;
      const reason = readReason(saveBox);
      if (!reason) return;
      try {
        await api("PUT", `/policies/${encodeURIComponent(role)}`, { item, reason }, { ifMatch: base });
        go("#/policies", `Saved the role ${role}: the configuration is now version ${state.version}.`);
      } catch (err) {
        await showError(err, scopes());
      }
    }));
    if (!isNew) {
      saveBox.querySelector(".actions").append(deleteButton(`Delete the role ${roleName}`, async (reason) => {
        await api("DELETE", `/policies/${encodeURIComponent(roleName)}`, { reason }, { ifMatch: base });
        go("#/policies", `Deleted the role ${roleName} (now version ${state.version}).`);
      }, saveBox, scopes));
    }

    // Preview: the same query as a role sees it now and under the edited, unsaved document.
    const roleOptions = items.map((it) => [it.name, it.name]);
    const preview = h("fieldset", { id: "preview" }, h("legend", {}, "Preview"),
      help("Runs a query as a role for a purpose, once with the saved policy and once with your edit. Nothing is saved."),
      h("div", { class: "grid" },
        field({ name: "preview-role", label: "Role", type: "select", options: roleOptions,
          value: isNew ? undefined : roleName }),
        field({ name: "preview-purpose", label: "Purpose", attrs: { list: "preview-purposes" },
          value: purposesOf(doc)[0] || "", hint: "The purpose the request declares." }),
        field({ name: "preview-shop", label: "Shop (optional)", hint: "For a shop-bound role: its source name." }),
        field({ name: "preview-region", label: "Region (optional)", hint: "For a region-bound role." })),
      h("datalist", { id: "preview-purposes" }, purposesOf(doc).map((p) => h("option", { value: p }))),
      field({ name: "preview-query", label: "GraphQL query", type: "textarea", rows: 7, value: DEFAULT_QUERY,
        attrs: { class: "json" } }));
    const previewButton = h("button", { type: "button", class: "secondary", id: "run-preview" }, "Preview");
    const results = h("div", { class: "side-by-side", id: "preview-results", "aria-live": "polite" });
    preview.append(h("div", { class: "actions" }, previewButton), results);
    previewButton.addEventListener("click", () => busy(previewButton, async () => {
      clearBanners();
      const item = readDoc();
      if (!item) return;
      const role = roleNameOf();
      const val = (id) => $(id).value.trim() || null;
      try {
        const r = await api("POST", "/preview", {
          changes: role ? [{ op: "put", kind: "policy", name: role, item }] : [],
          query: $("preview-query").value, variables: {},
          role: val("preview-role") || role, purpose: val("preview-purpose"),
          shop: val("preview-shop"), region: val("preview-region"),
        });
        results.replaceChildren(
          h("section", {}, h("h3", {}, "Now (saved policy)"), h("pre", { id: "preview-current" }, pretty(r.current))),
          h("section", {}, h("h3", {}, "With your edit"), h("pre", { id: "preview-proposed" }, pretty(r.proposed))));
      } catch (err) {
        await showError(err, scopes());
      }
    }));
    if (isNew) {
      const select = preview.querySelector("#preview-role");
      nameField.querySelector("input").addEventListener("input", (e) => {
        const v = e.target.value.trim();
        let opt = select.querySelector("option[data-new]");
        if (!opt) { opt = h("option", { "data-new": "true" }); select.prepend(opt); }
        opt.value = v;
        opt.textContent = v ? `${v} (new)` : "(new role)";
        select.value = v;
      });
    }
    put(editor,
      h("h2", { id: "policy-title" }, isNew ? "New role" : `Role ${roleName}`),
      nameField, json, saveBox, preview);
    if (focus) (isNew ? nameField.querySelector("input") : textarea).focus();
  }

  listRoles();
  if (items.length) edit(items[0].name, false);
  else editor.append(help("No role yet: press New role."));
}

// ------------------------------------------------------------------------------------ history

function when(at) {
  if (!at) return "—";
  const date = new Date(typeof at === "number" ? at * 1000 : at);
  return Number.isNaN(date.getTime()) ? String(at) : date.toLocaleString();
}

async function pageHistory() {
  const data = await api("GET", "/history?first=50");
  const body = view("History");
  body.append(help("Every saved change, newest first: who made it, when and why. Open a version to see ",
    "what it changed and to restore it (the restore is itself a new version)."));
  const items = [...(data.items || [])].sort((a, b) => b.version - a.version);
  if (!items.length) {
    body.append(h("p", { class: "empty" }, "No change has been saved yet."));
    return;
  }
  body.append(h("table", { id: "history-table" },
    h("caption", { class: "visually-hidden" }, "Configuration versions, newest first"),
    h("thead", {}, h("tr", {}, ["Version", "Who", "When", "Why", "What"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((it) => h("tr", { "data-version": it.version },
      h("th", { scope: "row" }, h("a", { href: `#/history/${it.version}`, "aria-label": `Version ${it.version}` },
        String(it.version)), it.version === data.version ? h("span", { class: "hint" }, " (running)") : null),
      h("td", {}, it.author || "—"),
      h("td", {}, h("time", { datetime: String(it.at ?? "") }, when(it.at))),
      h("td", {}, it.reason || "—"),
      h("td", {}, it.summary || "—"))))));
}

function diffView(diff) {
  const pre = h("pre", { class: "diff", id: "diff" });
  const lines = String(diff || "").split("\n");
  for (const line of lines) {
    let cls = null;
    if (line.startsWith("+++") || line.startsWith("---")) cls = "file";
    else if (line.startsWith("+")) cls = "add";
    else if (line.startsWith("-")) cls = "del";
    else if (line.startsWith("@@")) cls = "hunk";
    pre.append(cls ? h("span", { class: cls }, line) : `${line}\n`);
  }
  if (!diff) pre.textContent = "(no difference)";
  return pre;
}

async function pageHistoryEntry(version) {
  const data = await api("GET", `/history/${version}`);
  const base = data.version ?? state.version;
  const e = data.entry || {};
  const body = view(`Version ${e.version ?? version}`);
  body.append(help("What this version changed, as a unified diff of the configuration (+ added, − removed). ",
    h("a", { href: "#/history" }, "Back to the history"), "."));
  body.append(h("dl", { class: "entry" },
    h("dt", {}, "Who"), h("dd", {}, e.author || "—"),
    h("dt", {}, "When"), h("dd", {}, when(e.at)),
    h("dt", {}, "Why"), h("dd", {}, e.reason || "—"),
    h("dt", {}, "What"), h("dd", {}, e.summary || "—")));
  body.append(h("h2", {}, "Changes"), diffView(e.diff));
  const running = Number(e.version ?? version) === Number(data.version);
  const restore = h("button", { type: "button", id: "restore", disabled: running }, "Restore this version");
  const box = h("fieldset", { class: "save-box" }, h("legend", {}, "Restore"),
    help(running ? "This is the running configuration: there is nothing to restore."
      : `Makes the configuration what it was at version ${e.version ?? version}, as a new version; nothing is lost.`),
    h("div", { class: "actions" }, reasonField(), restore));
  restore.addEventListener("click", () => busy(restore, async () => {
    clearBanners();
    const reason = readReason(box);
    if (!reason) return;
    try {
      const r = await api("POST", `/history/${version}/restore`, { reason }, { ifMatch: base });
      go("#/history", `Restored version ${version}: the configuration is now version ${r.version ?? state.version}.`);
    } catch (err) {
      await showError(err, [{ kind: null, name: null, root: box }]);
    }
  }));
  body.append(box);
}

// ------------------------------------------------------------------------------------ start

$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  state.flash = "Signed out.";
  state.version = null;
  render();
});
window.addEventListener("hashchange", () => render({ focus: true }));
render();
