// The live view's script: keeps the journal's state from /api/stream and
// renders it. Plain DOM, no framework; every value from the server goes in
// as text, never as markup.
"use strict";

const PER_PARENT = 20;
const state = {
  controllers: new Map(), // "Kind/name" -> health
  parents: new Map(), // parent id -> [sync records], oldest first
  selected: null, // parent id
  pinned: false, // the user picked the parent: don't follow the latest
  fresh: new Set(), // seqs that arrived live
  open: new Set(), // ids of <details> left open
  events: new Map(), // parent id -> Events
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function json(value) {
  return el("pre", {}, JSON.stringify(value, null, 2));
}

// A folded block; `shown` blocks start open. What the user opens or closes
// stays so across renders.
function fold(id, label, body, shown) {
  const open = state.open.has(id) || (shown && !state.open.has(`closed:${id}`));
  const details = el("details", { "data-id": id, open }, el("summary", {}, label), body);
  details.addEventListener("toggle", () => {
    state.open.delete(details.open ? `closed:${id}` : id);
    state.open.add(details.open ? id : `closed:${id}`);
  });
  return details;
}

function describeParent(record) {
  const p = record.parent || {};
  if (!p.name) return record.key;
  return `${p.kind} ${p.namespace ? p.namespace + "/" : ""}${p.name}`;
}

function last(list) {
  return list[list.length - 1];
}

function when(text) {
  if (!text) return "";
  const date = new Date(text);
  return isNaN(date) ? text : date.toLocaleTimeString();
}

// ---- state updates --------------------------------------------------------

function addSync(record, live) {
  const id = `${record.controller_kind}/${record.controller}/${record.key}`;
  const list = state.parents.get(id) || [];
  if (list.some((r) => r.seq === record.seq)) return id;
  list.push(record);
  list.sort((a, b) => a.seq - b.seq);
  while (list.length > PER_PARENT) list.shift();
  state.parents.set(id, list);
  if (live) state.fresh.add(record.seq);
  return id;
}

function applySnapshot(snapshot) {
  state.controllers.clear();
  for (const c of snapshot.controllers) state.controllers.set(`${c.kind}/${c.name}`, c);
  state.parents.clear();
  for (const p of snapshot.parents) {
    for (const record of p.syncs) addSync(record, false);
  }
  if (!state.pinned) {
    let newest = null;
    for (const [id, list] of state.parents) {
      if (!newest || last(list).seq > newest.seq) newest = { id, seq: last(list).seq };
    }
    state.selected = newest ? newest.id : null;
  }
  if (state.selected) loadEvents(state.selected);
}

async function loadEvents(id) {
  const record = last(state.parents.get(id) || []);
  const parent = record && record.parent;
  if (!parent || !parent.uid) return;
  const query = new URLSearchParams({ namespace: parent.namespace || "", uid: parent.uid });
  try {
    const response = await fetch(`api/events?${query}`);
    if (!response.ok) throw new Error(await response.text());
    state.events.set(id, await response.json());
  } catch (err) {
    state.events.set(id, { error: String(err.message || err) });
  }
  render();
}

// ---- rendering ------------------------------------------------------------

function renderErrors() {
  const items = [];
  for (const c of state.controllers.values()) {
    if (c.last_error) items.push(`${c.kind} ${c.name}: ${c.last_error}`);
  }
  for (const list of state.parents.values()) {
    const record = last(list);
    if (record.error) items.push(`${describeParent(record)} (${record.controller}): ${record.error}`);
  }
  const box = document.getElementById("errors");
  box.hidden = items.length === 0;
  box.replaceChildren(
    el("h2", {}, `Errors (${items.length})`),
    el("ul", {}, items.map((text) => el("li", {}, text))),
  );
}

function renderControllers() {
  const list = document.getElementById("controllers");
  const items = [...state.controllers.values()].map((c) =>
    el("li", { "data-controller": `${c.kind}/${c.name}` },
      el("strong", {}, c.name), " ",
      el("span", { class: "badge", "data-state": c.state }, c.state), " ",
      el("span", { class: c.failures ? "badge bad" : "badge" }, `${c.syncs} syncs, ${c.failures} failed`),
      el("div", { class: "muted" }, c.kind, c.last_sync ? ` · last sync ${when(c.last_sync)}` : ""),
      c.last_error ? el("div", { class: "error" }, c.last_error) : null,
    ));
  list.replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, "No controller hosted yet.")]));
}

function renderParents() {
  const list = document.getElementById("parents");
  const ids = [...state.parents.keys()].sort();
  const items = ids.map((id) => {
    const record = last(state.parents.get(id));
    return el("li", {
      "data-parent": id,
      class: id === state.selected ? "selected" : "",
      onclick: () => {
        state.selected = id;
        state.pinned = true;
        loadEvents(id);
        render();
      },
    },
      el("span", { class: record.error ? "badge bad" : "badge ok" }, record.error ? "failing" : "ok"), " ",
      describeParent(record),
      el("div", { class: "muted" }, `${record.controller} · #${record.seq} · ${when(record.finished)}`));
  });
  list.replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, "No sync yet.")]));
}

// The children as a tree: what the last hook call observed, what it asked
// for, and what the sync did to each.
function childTree(record, history) {
  const call = [...record.calls].reverse().find((c) => c.hook === "sync" || c.hook === "finalize") || last(record.calls);
  const groups = new Map();
  const node = (group, name) => {
    if (!groups.has(group)) groups.set(group, new Map());
    const names = groups.get(group);
    if (!names.has(name)) names.set(name, { observed: null, desired: null, actions: [] });
    return names.get(name);
  };
  const request = (call && call.request) || {};
  const observed = request.children || request.attachments || {};
  for (const [group, byName] of Object.entries(observed)) {
    for (const [name, obj] of Object.entries(byName || {})) node(group, name).observed = obj;
  }
  const response = (call && call.response) || {};
  const desired = response.children || response.attachments || [];
  if (Array.isArray(desired)) {
    for (const obj of desired) {
      if (!obj || !obj.kind) continue;
      const group = `${obj.kind}.${obj.apiVersion}`;
      const ns = obj.metadata && obj.metadata.namespace;
      const name = (ns ? ns + "/" : "") + ((obj.metadata && obj.metadata.name) || "");
      const entry = [...(groups.get(group) || new Map()).entries()].find(([key]) => key === name || key.endsWith("/" + name));
      (entry ? entry[1] : node(group, name)).desired = obj;
    }
  }
  // The last write to each child among the syncs kept.
  const lastWrite = new Map();
  for (const r of history) {
    for (const action of r.actions) lastWrite.set(action.object, { ...action, seq: r.seq });
  }
  for (const action of lastWrite.values()) {
    const [kind, name] = action.object.split(" ");
    for (const [group, names] of groups) {
      if (!group.startsWith(kind + ".")) continue;
      for (const [key, child] of names) {
        if (key === name || name.endsWith("/" + key) || key.endsWith("/" + name)) child.actions.push(action);
      }
    }
  }
  const rootLabel = describeParent(record);
  const children = [...groups.entries()].map(([group, names]) =>
    el("li", {},
      el("span", { class: "group" }, `${group} (${names.size})`),
      el("ul", {}, [...names.entries()].map(([name, child]) => el("li", { "data-child": `${group}/${name}` },
        name, " ",
        el("span", { class: "muted" }, childState(child, !!(call && call.response))),
        child.actions.map((a) => el("span", { class: `action ${a.verb}`, title: `in sync #${a.seq}` },
          `${a.error ? a.verb + " failed" : a.verb} #${a.seq}`)),
      )))));
  return el("ul", { class: "tree" },
    el("li", {}, el("strong", {}, rootLabel),
      children.length ? el("ul", {}, children) : el("div", { class: "empty" }, "no children")));
}

// `answered`: the hook answered, so a child it did not ask for is not desired.
function childState(child, answered) {
  const obj = child.observed;
  if (!obj) return child.desired ? "desired, not observed yet" : "";
  const status = obj.status || {};
  const parts = [];
  if (obj.metadata && obj.metadata.deletionTimestamp) parts.push("deleting");
  if (status.phase) parts.push(status.phase);
  for (const c of status.conditions || []) {
    if (c.type === "Ready" || c.type === "Available") parts.push(`${c.type}=${c.status}`);
  }
  if (answered && !child.desired) parts.push("not desired");
  return parts.length ? parts.join(", ") : "observed";
}

function renderDiff(diff) {
  return el("pre", {}, (diff || []).map((op) =>
    el("div", { class: `op-${op.op}` },
      `${op.op} ${op.path}${op.value !== undefined ? " = " + JSON.stringify(op.value) : ""}`)));
}

function renderSync(record) {
  const failed = !!record.error || record.calls.some((c) => c.error);
  const calls = record.calls.map((call, i) => el("div", { class: "call" },
    el("div", { class: "head" },
      el("strong", {}, `${call.hook} hook`), " ",
      el("span", { class: "muted" }, `${call.latency_ms.toFixed(1)} ms · ${call.url}`)),
    call.error ? el("div", { class: "error" }, call.error) : null,
    fold(`${record.seq}/${i}/request`, "request", json(call.request)),
    call.response !== null && call.response !== undefined
      ? fold(`${record.seq}/${i}/response`, "response", json(call.response))
      : null));
  const actions = record.actions.length
    ? el("ul", {}, record.actions.map((a, i) => el("li", {},
        el("span", { class: `action ${a.verb}` }, a.verb), " ", a.object,
        a.error ? el("div", { class: "error" }, a.error) : null,
        a.diff ? fold(`${record.seq}/a${i}`, `diff (${a.diff.length} operation${a.diff.length === 1 ? "" : "s"})`, renderDiff(a.diff), true) : null)))
    : el("div", { class: "muted" }, "no child written");
  return el("article", {
    class: `sync${failed ? " failed" : ""}${state.fresh.has(record.seq) ? " fresh" : ""}`,
    "data-seq": record.seq,
  },
    el("div", { class: "head" },
      el("strong", {}, `#${record.seq}`),
      el("span", { class: failed ? "badge bad" : "badge ok" }, failed ? "failed" : "ok"),
      el("span", { class: "muted" }, `${when(record.finished)} · ${record.duration_ms.toFixed(1)} ms · generation ${record.parent && record.parent.generation}`)),
    record.error ? el("div", { class: "error" }, record.error) : null,
    calls,
    el("div", {}, el("strong", {}, "Actions"), actions));
}

function renderEvents(id) {
  const events = state.events.get(id);
  if (!events) return el("div", { class: "muted" }, "loading…");
  if (events.error) return el("div", { class: "error" }, events.error);
  if (!events.length) return el("div", { class: "muted" }, "no events");
  return el("table", {},
    el("tr", {}, el("th", {}, "type"), el("th", {}, "reason"), el("th", {}, "message"), el("th", {}, "count"), el("th", {}, "last")),
    events.map((e) => el("tr", { class: e.type === "Warning" ? "warning" : "" },
      el("td", {}, e.type), el("td", {}, e.reason), el("td", {}, e.message), el("td", {}, e.count), el("td", {}, when(e.time)))));
}

function renderDetail() {
  const box = document.getElementById("detail");
  const list = state.selected && state.parents.get(state.selected);
  if (!list) {
    box.replaceChildren(el("p", { class: "empty" }, "Select a parent to see its children and hook calls."));
    return;
  }
  const record = last(list);
  box.replaceChildren(
    el("h2", {}, record.controller_kind, " ", record.controller),
    el("h3", { id: "parent-title" }, describeParent(record)),
    el("h3", {}, "Children"),
    childTree(record, list),
    el("h3", {}, `Hook calls (last ${list.length})`),
    el("div", { id: "syncs" }, [...list].reverse().map(renderSync)),
    el("h3", {}, "Events"),
    renderEvents(state.selected));
}

function render() {
  renderErrors();
  renderControllers();
  renderParents();
  renderDetail();
}

// ---- the stream -----------------------------------------------------------

function connect() {
  const badge = document.getElementById("connection");
  const setConnection = (text) => {
    badge.textContent = text;
    badge.dataset.state = text;
  };
  const source = new EventSource("api/stream");
  source.addEventListener("open", () => setConnection("live"));
  source.addEventListener("error", () => setConnection(source.readyState === EventSource.CLOSED ? "disconnected" : "connecting"));
  source.addEventListener("snapshot", (e) => {
    setConnection("live");
    applySnapshot(JSON.parse(e.data));
    render();
  });
  source.addEventListener("sync", (e) => {
    const event = JSON.parse(e.data);
    const { type, ...record } = event;
    const id = addSync(record, true);
    // Follow the parent synced last, unless one was picked.
    if (!state.pinned || !state.selected) state.selected = id;
    if (id === state.selected) loadEvents(id);
    render();
  });
  source.addEventListener("controller", (e) => {
    const { type, ...health } = JSON.parse(e.data);
    state.controllers.set(`${health.kind}/${health.name}`, health);
    render();
  });
}

connect();
