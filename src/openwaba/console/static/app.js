/*
 * openwaba console: one page, plain JavaScript, no build step, no external assets.
 *
 * It calls openwaba's own JSON API with the key kept in sessionStorage: a number's key as
 * `D360-API-KEY`, or the partner key as `X-API-Key` (+ `X-Openwaba-Channel` for the number
 * picked). GET /console/stream (read with fetch: EventSource cannot send headers) says what
 * changed, and the view on screen fetches it again. Hash routes: #/chats[/<wa_id>],
 * #/webhooks[/<delivery id>], #/settings. Data only ever reaches the page as text nodes.
 *
 * Sections: utilities · API · banners · login and number picker · shell and router · chats
 * (list and thread, message content, composer) · webhooks · settings · live stream.
 */

// ---------------------------------------------------------------- utilities
const $ = (selector) => document.querySelector(selector);
const $$ = (selector) => [...document.querySelectorAll(selector)];
const PROPS = new Set(["value", "checked", "disabled", "hidden"]);

/** An element; children are nodes or strings (always text, never parsed as HTML). */
function h(tag, props, ...children) {
  const node = document.createElement(tag);
  if (tag === "button") node.type = "button"; // only a button given type "submit" submits its form
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "testid") node.dataset.testid = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else if (PROPS.has(key)) node[key] = value;
    else if (value !== false) node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child != null && child !== false) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const when = (seconds) => (seconds ? new Date(Number(seconds) * 1000).toLocaleString() : "");
const clock = (seconds) => new Date(Number(seconds) * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const fail = (message) => {
  throw new Error(message);
};
/** JSON text's value, or `fallback` when it is not JSON. */
function parseJson(text, fallback = null) {
  try {
    return JSON.parse(text);
  } catch {
    return fallback;
  }
}
const short = (text, n = 60) => (text && text.length > n ? text.slice(0, n - 1) + "…" : text || "");
/** Only web links become links or image sources: a `javascript:` URL in a message must not run here. */
const safeUrl = (url) => (typeof url === "string" && /^https?:\/\//i.test(url) ? url : null);
const link = (href, props, ...children) =>
  h("a", { ...props, href: safeUrl(href), target: "_blank", rel: "noopener noreferrer" }, ...children);

/** Text with its line breaks kept (CSS pre-wrap) and its http(s) links clickable. */
function richText(text) {
  return h("div", { class: "text" }, String(text ?? "").split(/(https?:\/\/\S+)/g).map((part, i) => (i % 2 ? link(part, null, part) : part)));
}

/** "Name: value" lines <-> a headers object. */
const headersText = (headers) => Object.entries(headers || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
function parseHeaders(text) {
  const headers = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf(":");
    if (at < 1) throw new Error(`Header line "${line}" is not "Name: value"`);
    headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return headers;
}

/** Nodes for `items`, one per key; a node whose data (`sig`) did not change is reused: it stays the same element. */
function keyed(container, items, sig, make, keyOf = (item) => item.id) {
  const before = container.keyed || new Map();
  container.keyed = new Map();
  return items.map((item) => {
    const key = String(keyOf(item));
    const s = sig(item);
    const node = before.get(key)?.sig === s ? before.get(key).node : make(item);
    container.keyed.set(key, { sig: s, node });
    return node;
  });
}

// ---------------------------------------------------------------- API
const STORE = "openwaba.console";
let auth = JSON.parse(sessionStorage.getItem(STORE) || "null"); // {key, mode, partnerId, channelId, channel, ready}

const saveAuth = (value) => sessionStorage.setItem(STORE, JSON.stringify((auth = value)));

function authHeaders(scoped = true) {
  if (!auth) return {};
  if (auth.mode === "channel") return { "D360-API-KEY": auth.key };
  return scoped && auth.channelId ? { "X-API-Key": auth.key, "X-Openwaba-Channel": auth.channelId } : { "X-API-Key": auth.key };
}

const apiError = (status, message) => Object.assign(new Error(message), { status });

/** Calls the API: the JSON body, or an error with the API's own message and the HTTP `status` (a 401 signs out). */
async function api(method, path, body, { scoped = true } = {}) {
  const init = { method, headers: authHeaders(scoped), cache: "no-store" };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(path, init).catch((err) => Promise.reject(apiError(0, `openwaba cannot be reached (${err.message})`)));
  const text = await res.text();
  const data = parseJson(text || "null");
  if (res.ok) return data;
  const error = apiError(res.status, errorText(data, text, res));
  if (res.status === 401 && auth?.ready) signOut(`Signed out: ${error.message}`);
  throw error;
}

/** The message of any of openwaba's error envelopes: flat, Graph, On-Premise, Partner. */
function errorText(data, text, res) {
  const e = data && (data.error ?? data.errors?.[0] ?? data.meta);
  if (typeof e === "string") return e;
  const details = e?.error_data?.details ?? e?.details ?? e?.developer_message;
  const parts = [e?.message ?? e?.title, typeof details === "string" ? details : null].filter(Boolean);
  return parts.length ? parts.join(": ") : `HTTP ${res.status} ${res.statusText}${text ? ": " + short(text, 200) : ""}`;
}

const blobs = new Map(); // media id -> Promise<object URL>; media never changes, so kept for the session

/** A media id's bytes as an object URL: the metadata, then its download URL with the key. */
function mediaUrl(id) {
  if (!blobs.has(id)) {
    const load = (async () => {
      const meta = await api("GET", `/${encodeURIComponent(id)}`);
      const where = new URL(meta.url, location.href); // fetched on this origin: the key never goes elsewhere
      const res = await fetch(where.pathname + where.search, { headers: authHeaders() });
      if (!res.ok) throw apiError(res.status, `download failed (HTTP ${res.status})`);
      return URL.createObjectURL(await res.blob());
    })();
    load.catch(() => blobs.delete(id)); // a later render tries again
    blobs.set(id, load);
  }
  return blobs.get(id);
}

// ---------------------------------------------------------------- banners
const showError = (err) => Object.assign($("#error"), { textContent: err.message ?? String(err), hidden: false });
const clearError = () => ($("#error").hidden = true);
let noticeTimer = 0;
function notify(text) {
  Object.assign($("#notice"), { textContent: text, hidden: false });
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => ($("#notice").hidden = true), 3000);
}

/** Runs a user's action: the API's error in the banner if it fails, else the notice `success` (text or fn). */
async function act(action, success) {
  clearError();
  try {
    const result = await action();
    if (success) notify(typeof success === "function" ? success(result) : success);
    return result ?? true;
  } catch (err) {
    showError(err);
    return undefined;
  }
}

// ---------------------------------------------------------------- login and number picker
function mount(node) {
  stopStream();
  shell = null;
  $("#app").replaceChildren(h("div", { class: "login-screen" }, node));
}

function renderLogin() {
  const input = h("input", { id: "key", type: "password", testid: "key-input", autocomplete: "off", required: true,
    placeholder: "D360-API-KEY or partner key" });
  const submit = (ev) => {
    ev.preventDefault();
    login(input.value.trim());
  };
  mount(h("form", { class: "card login", onsubmit: submit }, h("h1", null, "openwaba console"),
    h("p", { class: "muted" }, "Sign in with a number's API key, or with the partner key to see every number."),
    h("label", { for: "key" }, "Key"), input, h("button", { type: "submit", class: "primary", testid: "login" }, "Sign in")));
  input.focus();
}

/** Tries the key as a number's key, then as the partner key (GET /console/session). */
async function login(key) {
  clearError();
  if (!key) return showError("Enter a key");
  for (const mode of ["channel", "partner"]) {
    auth = { key, mode };
    const session = await api("GET", "/console/session", undefined, { scoped: false }).catch((err) => err);
    if (session instanceof Error && session.status !== 401) return showError(session) && (auth = null);
    if (session.channel || session.partner_id) {
      saveAuth({ key, mode, partnerId: session.partner_id, channel: session.channel, ready: true });
      if (!location.hash.startsWith("#/")) location.hash = "#/chats";
      return route();
    }
  }
  auth = null;
  showError("This key is neither a number's API key nor the partner key");
}

function signOut(message) {
  sessionStorage.removeItem(STORE);
  auth = null;
  for (const url of blobs.values()) url.then(URL.revokeObjectURL, () => {});
  blobs.clear();
  templates.clear();
  history.replaceState(null, "", location.pathname + location.search);
  renderLogin();
  if (message) showError(message);
}

async function renderPicker() {
  const list = h("div", { class: "channels" }, h("p", { class: "muted" }, "Loading numbers…"));
  mount(h("div", { class: "card login" }, h("h1", null, "Choose a number"), list,
    h("button", { class: "link", testid: "sign-out", onclick: () => signOut() }, "Sign out")));
  const path = `/api/v2/partners/${encodeURIComponent(auth.partnerId)}/channels`;
  const data = await act(() => api("GET", path, undefined, { scoped: false }));
  if (!data) return;
  list.replaceChildren(...data.channels.map((c) => h("button", { class: "channel", testid: `channel-${c.id}`, onclick: () => pick(c) },
    h("strong", null, "+" + c.phone_number), h("span", { class: "muted" }, ` ${c.type} · ${c.mode} · ${c.connector}`))));
  if (!data.channels.length) list.replaceChildren(h("p", null, "There are no numbers yet."));
}

async function pick(c) {
  const channel = { ...c, sandbox: c.connector === "sandbox" }; // until the session describes it
  saveAuth({ ...auth, channelId: c.id, channel });
  const session = await api("GET", "/console/session").catch(() => null);
  if (session?.channel) saveAuth({ ...auth, channel: session.channel });
  location.hash = "#/chats";
  route();
}

// ---------------------------------------------------------------- shell and router
let shell = null; // {view, live}: the elements every view shares
let view = null; // the view on screen: {refresh(changes)}
let viewToken = 0; // bumps on every navigation: a late answer for an old view is dropped

function ensureShell() {
  if (shell) return;
  const navLink = (name, label, icon) => h("a", { href: `#/${name}`, class: "nav-link", testid: `nav-${name}`, data: { view: name } },
    h("span", { class: "icon" }, icon), h("span", null, label));
  const live = h("span", { class: "live", testid: "live", data: { state: "off" }, title: "live updates" }, "●");
  const channel = auth.channel || {};
  const switcher = () => {
    saveAuth({ ...auth, channelId: null, channel: null });
    route();
  };
  const main = h("main", { class: "view" });
  $("#app").replaceChildren(h("div", { class: "shell" },
    h("header", { class: "topbar" }, h("span", { class: "brand" }, "openwaba"),
      h("span", { class: "number", title: `phone_number_id ${channel.phone_number_id || ""}` }, "+" + (channel.phone_number || "?"),
        channel.sandbox ? h("span", { class: "tag" }, "sandbox") : null), live,
      auth.mode === "partner" ? h("button", { class: "link", testid: "switch-channel", onclick: switcher }, "Switch") : null,
      h("button", { class: "link", testid: "sign-out", onclick: () => signOut() }, "Sign out")),
    h("nav", { class: "nav" }, navLink("chats", "Chats", "💬"), navLink("webhooks", "Webhooks", "📨"), navLink("settings", "Settings", "⚙")),
    main));
  shell = { view: main, live };
  startStream();
}

const VIEWS = { chats: renderChats, webhooks: renderWebhooks, settings: renderSettings };

function route() {
  if (!auth?.ready) return renderLogin();
  if (auth.mode === "partner" && !auth.channelId) return renderPicker();
  ensureShell();
  const [path, arg] = location.hash.replace(/^#\/?/, "").split("/");
  const name = VIEWS[path] ? path : "chats";
  $$(".nav-link").forEach((a) => a.classList.toggle("active", a.dataset.view === name));
  clearError();
  viewToken += 1;
  view = VIEWS[name](arg ? decodeURIComponent(arg) : null);
}

/** A loader for the view on screen: `draw` gets what `fetcher` answered, if it is the latest call and the view is still shown. */
function loader(fetcher, draw) {
  const token = viewToken;
  let seq = 0;
  return async () => {
    const mine = ++seq;
    try {
      const data = await fetcher();
      if (token === viewToken && mine === seq) draw(data);
    } catch (err) {
      if (token === viewToken) showError(err);
    }
  };
}

/** The changes that concern a view: those of kind `what`, or "all" after the stream reconnected. */
const touching = (changes, what) => changes.filter((c) => c.what === what || c.what === "all");

// ---------------------------------------------------------------- chats: list and thread
const chats = { users: [], previews: new Map(), thread: null, replyTo: null, file: null, composer: null };
const userPath = (waId) => `/sandbox/users/${encodeURIComponent(waId)}/messages`;

function renderChats(waId) {
  const list = h("div", { class: "chat-items", testid: "chat-list" });
  const pane = h("section", { class: "thread-pane" },
    h("div", { class: "empty center" }, "Pick a chat to see the conversation as the user's phone shows it."));
  shell.view.replaceChildren(h("div", { class: `chats${waId ? " has-thread" : ""}` }, h("aside", { class: "chat-list" }, list), pane));
  Object.assign(chats, { replyTo: null, file: null });
  if (!auth.channel?.sandbox) {
    list.append(h("p", { class: "empty" }, "This is not a sandbox number: its users are real WhatsApp users, not simulated ones."));
    return null;
  }
  const [token, seqs] = [viewToken, new Map()];
  /** One chat's newest message; each user's latest answer wins. */
  const preview = async (id) => {
    const mine = (seqs.get(id) || 0) + 1;
    seqs.set(id, mine);
    const data = await api("GET", userPath(id)).catch(() => null);
    if (!data || seqs.get(id) !== mine || token !== viewToken) return;
    chats.previews.set(id, data.messages[0] || null);
    drawChatList(list, waId);
  };
  const loadUsers = loader(() => api("GET", "/sandbox/users"), ({ users }) => {
    chats.users = users;
    drawChatList(list, waId);
    users.forEach((u) => preview(u.wa_id));
  });
  if (chats.users.length) drawChatList(list, waId); // what was known, until the answer
  loadUsers();
  const thread = waId ? openThread(pane, waId) : null;
  return {
    refresh(changes) {
      const touched = touching(changes, "messages");
      if (touched.some((c) => !c.wa_id)) loadUsers();
      else new Set(touched.map((c) => c.wa_id)).forEach(preview);
      if (thread && touched.some((c) => !c.wa_id || c.wa_id === waId)) thread();
    },
  };
}

function drawChatList(list, activeId) {
  const latest = (u) => Number(chats.previews.get(u.wa_id)?.timestamp || 0);
  const users = [...chats.users].sort((a, b) => latest(b) - latest(a));
  const sig = (u) => JSON.stringify([u, chats.previews.get(u.wa_id), u.wa_id === activeId]);
  const items = keyed(list, users, sig, (u) => chatItem(u, activeId), (u) => u.wa_id);
  list.replaceChildren(...(items.length ? items : [h("p", { class: "empty" }, "No simulated users.")]));
}

function chatItem(user, activeId) {
  const last = chats.previews.get(user.wa_id);
  const name = user.name || user.wa_id;
  return h("a", { href: `#/chats/${encodeURIComponent(user.wa_id)}`, class: `chat-item${user.wa_id === activeId ? " active" : ""}`,
    testid: `chat-${user.wa_id}` }, h("div", { class: "avatar" }, name.slice(0, 1).toUpperCase()),
    h("div", { class: "chat-main" },
      h("div", { class: "chat-top" }, h("span", { class: "chat-name" }, name), h("span", { class: "chat-time" }, last ? clock(last.timestamp) : "")),
      h("div", { class: "chat-preview" }, last?.direction === "outbound" ? ticks(last) : null, " ", last ? short(summary(last), 48) : "")));
}

/** The thread pane of one user; returns its loader. */
function openThread(pane, waId) {
  const title = h("div", { class: "thread-name" }, waId);
  const subtitle = h("div", { class: "thread-sub" }, "+" + waId);
  const body = h("div", { class: "thread", testid: "thread", onscroll: () => (body.dataset.stick = nearBottom(body) ? "1" : "0") });
  const load = loader(async () => {
    const data = await api("GET", userPath(waId));
    await ensureTemplates(data.messages);
    return data;
  }, (data) => {
    chats.thread = data;
    title.textContent = chats.users.find((u) => u.wa_id === waId)?.name || waId;
    subtitle.textContent = data.business_typing ? "typing…" : "+" + waId;
    drawThread(body, data, load);
    chats.composer.update();
    if (data.business_typing) setTimeout(load, 26000); // "typing…" lapses after 25 s without any change to hear
  });
  chats.composer = composer(waId, load);
  pane.replaceChildren(h("div", { class: "thread-head" },
    h("a", { href: "#/chats", class: "back", testid: "back", title: "Back to the chats" }, "←"),
    h("div", { class: "avatar" }, "👤"), h("div", null, title, subtitle)), body, chats.composer.node);
  load();
  return load;
}

const nearBottom = (node) => node.scrollHeight - node.scrollTop - node.clientHeight < 80;

/** Draws the phone's view, oldest at the top, keeping the reader at the bottom if they were there. */
function drawThread(body, data, reload) {
  const [top, atBottom] = [body.scrollTop, !body.childElementCount || nearBottom(body)];
  const messages = [...data.messages].reverse();
  const reactions = new Map(); // wamid -> Map(direction -> emoji): each side's latest reaction
  for (const { reaction, direction } of messages.filter((m) => m.type === "reaction")) {
    const mine = reactions.get(reaction?.message_id) || new Map();
    reactions.set(reaction?.message_id, mine);
    if (reaction?.emoji) mine.set(direction, reaction.emoji);
    else mine.delete(direction);
  }
  const ctx = { byId: new Map(messages.map((m) => [m.id, m])), reactions, waId: data.wa_id, reload };
  const shown = messages.filter((m) => m.type !== "reaction");
  // The status is not part of the signature: ticks change in place, so a bubble stays the same element.
  const sig = (m) => JSON.stringify([{ ...m, status: null }, [...(reactions.get(m.id)?.values() || [])],
    m.type === "template" && templates.has(templateKey(m.template))]);
  const rows = keyed(body, shown, sig, (m) => messageRow(m, ctx));
  rows.forEach((row, i) => applyStatus(row.querySelector(".msg"), shown[i]));
  if (data.business_typing) rows.push(h("div", { class: "row out" }, h("div", { class: "msg out typing", testid: "typing" }, "typing…")));
  body.replaceChildren(...(rows.length ? rows : [h("div", { class: "empty center" }, "No messages yet.")]));
  body.dataset.stick = atBottom ? "1" : "0";
  body.scrollTop = atBottom ? body.scrollHeight : top;
}

function messageRow(m, ctx) {
  const out = m.direction === "outbound";
  const mine = ctx.reactions.get(m.id);
  const quoted = m.context?.id && ctx.byId.get(m.context.id);
  const bubble = h("div", { class: `msg ${out ? "out" : "in"}`, testid: "msg", data: { wamid: m.id, type: m.type },
    title: "Click to reply to this message" },
    m.context?.id ? h("div", { class: "quote" }, short(quoted ? summary(quoted) : "a message", 80)) : null,
    content(m), h("div", { class: "meta" }, clock(m.timestamp), " ", ticks(m)),
    mine?.size ? h("div", { class: "reactions", testid: "reaction" }, [...mine.values()].join(" ")) : null);
  bubble.addEventListener("click", (ev) => {
    if (ev.target.closest("button, a, input")) return;
    chats.replyTo = chats.replyTo === m.id ? null : m.id;
    chats.composer.update();
  });
  return h("div", { class: `row ${out ? "out" : "in"}` }, out ? reactButton(m, ctx) : null,
    h("div", { class: "bubble-col" }, bubble, out ? actions(m, ctx) : null));
}

/** The parts of a bubble that follow the message's status. */
function applyStatus(bubble, m) {
  bubble.dataset.status = m.status;
  bubble.classList.toggle("selected", chats.replyTo === m.id);
  setTicks(bubble.querySelector(".ticks"), m);
  bubble.querySelector(".fail-note")?.remove();
  if (m.status === "failed") bubble.querySelector(".meta").after(failure(m));
}

const TICKS = { sent: "✓", delivered: "✓✓", read: "✓✓", failed: "⚠" };

/** A business message's ticks; an inbound message shows blue ticks once the business read it. */
function setTicks(node, m) {
  const out = m.direction === "outbound";
  node.className = `ticks ${m.status}`;
  node.textContent = out ? TICKS[m.status] ?? "🕓" : m.status === "read" ? "✓✓" : "";
  node.title = out ? m.status : m.status === "read" ? "read by the business" : "";
  node.hidden = !node.textContent;
  return node;
}
const ticks = (m) => setTicks(h("span", { testid: "ticks" }), m);

function failure(m) {
  const e = m.error ?? m.errors?.[0];
  const text = typeof e === "string" ? e : [e?.code, e?.title, e?.error_data?.details ?? e?.details].filter(Boolean).join(" · ");
  return h("div", { class: "fail-note", testid: "msg-error" }, "⚠ Not delivered", text ? `: ${text}` : "");
}

/** One line describing a message, for chat previews and quotes. */
function summary(m) {
  const o = m[m.type] || {};
  const lines = {
    text: o.body, image: "📷 " + (o.caption || "Photo"), sticker: "💟 Sticker", video: "🎬 " + (o.caption || "Video"),
    audio: "🎵 Audio", document: "📄 " + (o.filename || o.caption || "Document"), location: "📍 " + (o.name || "Location"),
    contacts: "👤 " + (m.contacts?.[0]?.name?.formatted_name || "Contact"), reaction: `Reacted ${o.emoji || ""}`,
    template: m.text || `Template ${o.name}`, button: o.text,
    interactive: o.body?.text || o.button_reply?.title || o.list_reply?.title || `Interactive ${o.type}`,
  };
  return lines[m.type] ?? `${m.type} message`;
}

// ---------------------------------------------------------------- chats: message content
function content(m) {
  const o = m[m.type] || {};
  switch (m.type) {
    case "text": return richText(o.body);
    case "image": case "sticker": return mediaPreview(o, m.type);
    case "video": return mediaTile(o, "🎬", "Video");
    case "audio": return mediaTile(o, "🎵", "Audio");
    case "document": return mediaTile(o, "📄", "Document");
    case "location": return locationTile(o);
    case "contacts": return h("div", { class: "contacts" }, (m.contacts || []).map((c) => h("div", { class: "contact" },
      "👤 ", h("strong", null, c.name?.formatted_name || "Contact"), " ", (c.phones || []).map((p) => p.phone).join(", "))));
    case "interactive": return interactive(o);
    case "template": return template(m, o);
    case "button": return h("div", { class: "text" }, o.text, h("div", { class: "small muted" }, "quick reply"));
    default: return h("div", { class: "text muted" }, `${m.type} message`);
  }
}

/** An image or sticker; a tile instead when it cannot be shown (e.g. a link this browser cannot reach). */
function mediaPreview(o, kind) {
  if (!safeUrl(o.link) && !o.id) return tile(o, "📷", kind);
  const img = h("img", { class: kind, alt: o.caption || kind, onload: () => keepBottom(img) });
  const picture = safeUrl(o.link) ? link(o.link, null, img) : img;
  const fallback = () => picture.replaceWith(tile(o, kind === "sticker" ? "💟" : "📷", kind === "sticker" ? "Sticker" : "Image"));
  img.addEventListener("error", fallback);
  if (safeUrl(o.link)) img.src = o.link;
  else mediaUrl(o.id).then((url) => (img.src = url), fallback);
  return h("div", { class: "media" }, picture, o.caption ? richText(o.caption) : null);
}

/** A loaded image makes the thread taller: the reader stays at the bottom if that is where they were. */
function keepBottom(node) {
  const thread = node.closest(".thread");
  if (thread?.dataset.stick === "1") thread.scrollTop = thread.scrollHeight;
}

const mediaTile = (o, icon, label) => h("div", { class: "media" }, tile(o, icon, label), o.caption ? richText(o.caption) : null);

function tile(o, icon, label) {
  const name = o.filename || o.mime_type || (o.link ? o.link.split("/").pop() : o.id) || "";
  const open = async () => {
    const url = safeUrl(o.link) || (o.id && (await act(() => mediaUrl(o.id))));
    if (!url) return;
    const a = h("a", { href: url, download: o.filename || "", target: "_blank", rel: "noopener noreferrer" });
    document.body.append(a);
    a.click();
    a.remove();
  };
  return h("div", { class: "tile" }, h("span", { class: "tile-icon" }, icon),
    h("div", null, h("strong", null, label), h("div", { class: "small muted" }, short(name, 40))),
    o.id || safeUrl(o.link) ? h("button", { class: "tile-open", onclick: open, testid: "media-open" }, "Open") : null);
}

function locationTile(o) {
  const [lat, lon] = [o.latitude, o.longitude].map(encodeURIComponent);
  return h("div", { class: "tile" }, h("span", { class: "tile-icon" }, "📍"),
    h("div", null, h("strong", null, o.name || "Location"), o.address ? h("div", { class: "small" }, o.address) : null,
      link(`https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`, { class: "small" }, `${o.latitude}, ${o.longitude}`)));
}

function interactive(o) {
  if (o.type === "button_reply" || o.type === "list_reply") {
    const choice = o[o.type] || {};
    return h("div", { class: "text" }, choice.title, choice.description ? h("div", { class: "small muted" }, choice.description) : null);
  }
  const header = o.header || {};
  return h("div", { class: "interactive" },
    header.type === "text" ? h("div", { class: "head" }, header.text) : null,
    ["image", "video", "document"].includes(header.type) ? content({ type: header.type, [header.type]: header[header.type] }) : null,
    o.body?.text ? richText(o.body.text) : null, o.footer?.text ? h("div", { class: "foot" }, o.footer.text) : null,
    ["button", "list", "cta_url"].includes(o.type) ? null : h("div", { class: "small muted" }, `${o.type} message`));
}

/** Under a business bubble: reply buttons, a list's menu button, a CTA link, a template's buttons. */
function actions(m, ctx) {
  const o = m[m.type] || {};
  const tap = (body) => act(() => api("POST", userPath(ctx.waId), { message_id: m.id, ...body })).then(ctx.reload);
  const kind = m.type === "interactive" ? o.type : m.type;
  let buttons = [];
  if (kind === "button") {
    buttons = (o.action?.buttons || []).map((b) => h("button", { class: "reply", testid: "reply-button", data: { id: b.reply?.id },
      onclick: () => tap({ type: "button_reply", id: b.reply?.id }) }, "↩ ", b.reply?.title));
  } else if (kind === "list") {
    buttons = [h("button", { class: "reply", testid: "list-open", onclick: () => openList(o, tap) }, "☰ ", o.action?.button || "Menu")];
  } else if (kind === "cta_url") {
    const p = o.action?.parameters || {};
    buttons = [link(p.url, { class: "reply", testid: "cta-url" }, "↗ ", p.display_text)];
  } else if (kind === "flow") {
    buttons = [h("span", { class: "reply muted" }, o.action?.parameters?.flow_cta || "Open flow")];
  } else if (kind === "template") {
    buttons = templateButtons(o, tap);
  }
  return buttons.length ? h("div", { class: "buttons" }, buttons) : null;
}

function openList(o, tap) {
  const close = () => sheet.remove();
  const rowButton = (row) => h("button", { class: "row-item", testid: "list-row", data: { id: row.id }, onclick: () => {
    close();
    tap({ type: "list_reply", id: row.id });
  } }, h("div", null, row.title), row.description ? h("div", { class: "small muted" }, row.description) : null);
  const sheet = h("div", { class: "overlay", testid: "list-sheet", onclick: (ev) => ev.target === sheet && close() },
    h("div", { class: "sheet" },
      h("div", { class: "sheet-head" }, h("button", { class: "link", onclick: close, testid: "list-close" }, "✕"),
        h("strong", null, o.action?.button || "Menu")),
      (o.action?.sections || []).map((s) => h("div", { class: "section" },
        s.title ? h("div", { class: "section-title" }, s.title) : null, (s.rows || []).map(rowButton)))));
  document.body.append(sheet);
}

// The phone view gives a template's body with its parameters filled in; its header, footer and
// buttons come from the template's definition (GET /v1/configs/templates), cached by name and language.
const templates = new Map();
let templatesFetched = 0;
const templateKey = (o) => `${o.name}|${o.language?.code ?? o.language}`;

async function ensureTemplates(messages) {
  const missing = messages.some((m) => m.type === "template" && !templates.has(templateKey(m.template)));
  if (!missing || Date.now() - templatesFetched < 5000) return;
  templatesFetched = Date.now();
  const data = await api("GET", "/v1/configs/templates?limit=1000").catch(() => null); // without it: the body alone
  for (const t of data?.waba_templates || []) templates.set(templateKey(t), t);
}

function templateParts(o) {
  const def = templates.get(templateKey(o));
  return {
    component: (type) => (def?.components || []).find((c) => c.type === type),
    sent: (type, index) => (o.components || []).find((c) => c.type === type && (index === undefined || String(c.index) === String(index))),
  };
}

const fill = (text, params) => String(text || "").replace(/\{\{(\d+)\}\}/g, (all, n) => params?.[n - 1]?.text ?? all);

function template(m, o) {
  const { component, sent } = templateParts(o);
  const header = component("HEADER");
  const media = (sent("header")?.parameters || []).find((p) => ["image", "video", "document"].includes(p.type));
  return h("div", { class: "interactive" },
    header?.format === "TEXT" ? h("div", { class: "head" }, fill(header.text, sent("header")?.parameters)) : null,
    media ? content({ type: media.type, [media.type]: media[media.type] }) : null,
    richText(m.text ?? `Template ${o.name} (${o.language?.code ?? ""})`),
    component("FOOTER") ? h("div", { class: "foot" }, component("FOOTER").text) : null);
}

function templateButtons(o, tap) {
  const { component, sent } = templateParts(o);
  return (component("BUTTONS")?.buttons || []).map((b, index) => {
    if (b.type === "QUICK_REPLY") {
      return h("button", { class: "reply", testid: "reply-button", data: { index }, onclick: () => tap({ type: "button", index }) }, "↩ ", b.text);
    }
    if (b.type === "URL") return link(fill(b.url, sent("button", index)?.parameters), { class: "reply" }, "↗ ", b.text);
    return h("span", { class: "reply muted" }, b.type === "PHONE_NUMBER" ? "📞 " : "", b.text);
  });
}

// ---------------------------------------------------------------- chats: composer and reactions
const EMOJIS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

function reactButton(m, ctx) {
  const open = (ev) => {
    ev.stopPropagation();
    $$(".picker").forEach((p) => p.remove());
    const react = (emoji) => {
      picker.remove();
      act(() => api("POST", userPath(ctx.waId), { type: "reaction", reaction: { message_id: m.id, emoji } })).then(ctx.reload);
    };
    const picker = h("div", { class: "picker", testid: "emoji-picker" },
      EMOJIS.map((e) => h("button", { testid: "emoji", data: { emoji: e }, onclick: () => react(e) }, e)),
      ctx.reactions.get(m.id)?.has("inbound")
        ? h("button", { testid: "emoji", data: { emoji: "" }, title: "Remove the reaction", onclick: () => react("") }, "✕") : null);
    ev.currentTarget.after(picker);
  };
  return h("button", { class: "react", testid: "react", title: "React as the user", onclick: open }, "☺");
}

/** The user's composer: text (replying to the selected message), or a file with the text as its caption. */
function composer(waId, reload) {
  const input = h("input", { class: "composer-input", testid: "composer-input", placeholder: "Type a message as the user", autocomplete: "off" });
  const file = h("input", { type: "file", class: "file-input", testid: "attach-input", onchange: () => {
    chats.file = file.files[0] || null;
    update();
  } });
  const replyBar = h("div", { class: "reply-bar", testid: "reply-to" });
  const fileBar = h("div", { class: "reply-bar", testid: "attachment" });
  const cancel = (what) => h("button", { class: "link", testid: `${what}-cancel`, onclick: () => {
    chats[what === "reply" ? "replyTo" : "file"] = null;
    if (what === "file") file.value = "";
    update();
  } }, "✕");
  const send = async (ev) => {
    ev.preventDefault();
    const text = input.value;
    let body = text.trim() ? { text, context: chats.replyTo ? { message_id: chats.replyTo } : undefined } : null;
    if (chats.file) {
      body = new FormData();
      body.append("file", chats.file, chats.file.name);
      if (text.trim()) body.append("caption", text);
    }
    if (!body || !(await act(() => api("POST", userPath(waId), body)))) return;
    Object.assign(chats, { file: null, replyTo: null });
    input.value = file.value = "";
    update();
    reload();
  };
  function update() {
    const quoted = chats.replyTo && chats.thread?.messages.find((m) => m.id === chats.replyTo);
    replyBar.replaceChildren(...(quoted ? ["↩ ", short(summary(quoted), 70), cancel("reply")] : []));
    fileBar.replaceChildren(...(chats.file ? ["📎 ", chats.file.name, " (the text is its caption)", cancel("file")] : []));
    [replyBar.hidden, fileBar.hidden] = [!quoted, !chats.file];
    $$(".msg[data-wamid]").forEach((n) => n.classList.toggle("selected", n.dataset.wamid === chats.replyTo));
  }
  update();
  const node = h("form", { class: "composer", onsubmit: send }, replyBar, fileBar, h("div", { class: "composer-row" },
    h("label", { class: "attach", title: "Send a file as the user" }, "📎", file), input,
    h("button", { type: "submit", class: "send", testid: "send", title: "Send as the user" }, "➤")));
  return { node, update };
}

// ---------------------------------------------------------------- webhooks
const hooks = { state: "", destination: "", event_id: "", cursors: [] }; // cursors: the `before` of each page shown

function renderWebhooks(id) {
  return id ? renderDelivery(id) : renderDeliveries();
}

function renderDeliveries() {
  const inputs = {
    state: h("select", { testid: "filter-state", "aria-label": "state", onchange: () => apply() },
      ["", "held", "pending", "delivered", "dead"].map((s) => h("option", { value: s }, s || "any state"))),
    destination: h("input", { testid: "filter-destination", placeholder: "destination (e.g. main)" }),
    event_id: h("input", { testid: "filter-event", placeholder: "event id (evt_…)" }),
  };
  for (const [key, input] of Object.entries(inputs)) input.value = hooks[key];
  const apply = (ev) => {
    ev?.preventDefault();
    for (const [key, input] of Object.entries(inputs)) hooks[key] = input.value.trim();
    hooks.cursors = [];
    load();
  };
  const [replayBar, table, pager] = [h("div", { class: "toolbar replay-bar" }), h("tbody"), h("div", { class: "pager" })];
  const columns = ["Time", "Event", "Destination", "State", "Attempts", "Last result", "Injected"];
  shell.view.replaceChildren(h("div", { class: "page" }, h("h2", null, "Webhook deliveries"),
    h("form", { class: "toolbar", onsubmit: apply }, Object.values(inputs), h("button", { type: "submit", testid: "filter-apply" }, "Filter")),
    replayBar, h("div", { class: "table-wrap" }, h("table", { class: "deliveries" },
      h("thead", null, h("tr", null, columns.map((t) => h("th", null, t)))), table)), pager));
  const load = loader(() => {
    const query = new URLSearchParams({ limit: "50" });
    for (const key of ["state", "destination", "event_id"]) if (hooks[key]) query.set(key, hooks[key]);
    if (hooks.cursors.length) query.set("before", hooks.cursors[hooks.cursors.length - 1]);
    return Promise.all([api("GET", `/deliveries?${query}`), api("GET", "/multi_webhook").catch(() => null)]);
  }, ([data, multi]) => {
    table.replaceChildren(...keyed(table, data.deliveries, JSON.stringify, deliveryRow));
    if (!data.deliveries.length) table.append(h("tr", null, h("td", { colspan: 7, class: "empty" }, "No deliveries.")));
    drawReplayBar(replayBar, data.deliveries, multi, load);
    drawPager(pager, data.paging?.before, load);
  });
  load();
  return { refresh: (changes) => touching(changes, "deliveries").length && load() };
}

function deliveryRow(d) {
  const last = d.last_status != null ? `HTTP ${d.last_status}` : d.last_error || "";
  return h("tr", { testid: "delivery", data: { id: d.id, state: d.state }, class: "clickable", onclick: () => (location.hash = `#/webhooks/${d.id}`) },
    h("td", { class: "nowrap" }, when(d.created_at)),
    h("td", null, d.event.kind, d.event.wamid ? h("div", { class: "small muted mono" }, "…" + d.event.wamid.slice(-12)) : null),
    h("td", { title: d.destination.url }, d.destination.name), h("td", null, h("span", { class: `state ${d.state}` }, d.state)),
    h("td", { class: "num" }, d.attempts_made), h("td", { class: "small", title: last }, short(last, 70)),
    h("td", null, (d.injected || []).map((label) => h("span", { class: "badge", testid: "injected" }, label))));
}

function drawReplayBar(bar, deliveries, multi, reload) {
  const names = new Set(["main", ...deliveries.map((d) => d.destination.name), ...(multi?.destinations || []).map((d) => d.name)]);
  const replay = (name) => act(() => api("POST", "/deliveries/replay", { state: "dead", destination: name }),
    (r) => (r.replayed ? `Replaying ${r.replayed} dead deliveries of ${name}` : `${name} has no dead deliveries`)).then(reload);
  bar.replaceChildren(h("span", { class: "muted" }, "Replay all dead:"),
    ...[...names].map((name) => h("button", { testid: "replay-dead", data: { destination: name }, onclick: () => replay(name) }, name)));
}

function drawPager(pager, older, reload) {
  const go = (change) => () => {
    change();
    reload();
  };
  pager.replaceChildren(
    h("button", { testid: "page-newer", disabled: !hooks.cursors.length, onclick: go(() => hooks.cursors.pop()) }, "← Newer"),
    h("button", { testid: "page-older", disabled: !older, onclick: go(() => hooks.cursors.push(older)) }, "Older →"));
}

function renderDelivery(id) {
  // The head (state, replay) stays the same elements; the facts below are drawn again when they change.
  const state = h("span", { class: "state", testid: "delivery-state" });
  const [facts, replay] = [h("div"), () => act(() => api("POST", `/deliveries/${encodeURIComponent(id)}/replay`), "Replaying the delivery").then(load)];
  shell.view.replaceChildren(h("div", { class: "page" }, h("a", { href: "#/webhooks", class: "back-link" }, "← All deliveries"),
    h("div", { class: "detail-head" }, h("h2", null, `Delivery #${id}`), state,
      h("button", { class: "primary", testid: "replay", onclick: replay }, "↻ Replay")), facts));
  let shown = "";
  const load = loader(() => api("GET", `/deliveries/${encodeURIComponent(id)}`), (d) => {
    Object.assign(state, { className: `state ${d.state}`, textContent: d.state });
    if (JSON.stringify(d) !== shown) facts.replaceChildren(...deliveryDetail(d));
    shown = JSON.stringify(d);
  });
  load();
  return { refresh: (changes) => touching(changes, "deliveries").length && load() };
}

function deliveryDetail(d) {
  const fact = (label, ...value) => [h("dt", null, label), h("dd", null, ...value)];
  const badges = (d.injected || []).map((l) => h("span", { class: "badge", testid: "injected" }, l));
  // What was sent: the delivery's `headers`, else the last attempt's (name -> value, or [name, value] pairs).
  const sent = d.headers ?? d.attempts?.[d.attempts.length - 1]?.headers;
  const attempt = (a, i) => h("tr", { testid: "attempt", data: { status: a.status_code ?? "" } },
    h("td", null, i + 1), h("td", { class: "nowrap" }, when(a.at)), h("td", null, a.status_code ?? "—"),
    h("td", { class: "num" }, `${a.latency_ms} ms`), h("td", { class: "small" }, a.error || ""),
    h("td", null, h("code", { class: "small" }, a.response_excerpt || "")));
  return [
    h("dl", { class: "facts" },
      fact("Event", d.event.kind, d.event.wamid ? h("div", { class: "mono small" }, d.event.wamid) : null),
      fact("Event id", h("span", { class: "mono" }, d.event_id)),
      fact("Destination", `${d.destination.name} (${d.destination.kind}) `, h("span", { class: "mono small" }, d.destination.url)),
      fact("Created", when(d.created_at)), fact("Next attempt", when(d.next_attempt_at) || "—"), fact("Deadline", when(d.deadline)),
      fact("Injected", badges.length ? badges : "—")),
    h("h3", null, "Attempts"),
    h("div", { class: "table-wrap" }, h("table", { class: "attempts" },
      h("thead", null, h("tr", null, ["#", "Time", "Status", "Latency", "Error", "Response"].map((t) => h("th", null, t)))),
      h("tbody", null, (d.attempts || []).map(attempt),
        d.attempts?.length ? null : h("tr", null, h("td", { colspan: 6, class: "empty" }, "No attempt yet."))))),
    h("h3", null, "Headers sent"),
    sent ? h("pre", { class: "code", testid: "headers" }, Array.isArray(sent) ? sent.map((p) => p.join(": ")).join("\n") : headersText(sent))
      : h("p", { class: "muted", testid: "headers" }, "This server does not report the headers it sent."),
    h("h3", null, "Payload"), h("pre", { class: "code", testid: "payload" }, JSON.stringify(d.payload, null, 2)),
  ];
}

// ---------------------------------------------------------------- settings
const FAIL_CODES = [[131026, "Message undeliverable"], [131047, "Re-engagement (24 h window)"], [131049, "Healthy ecosystem"],
  [131050, "User stopped marketing"], [130472, "Number in an experiment"], [131053, "Media upload error"],
  [132018, "Template parameters"], [130403, "Business blocked the user"], [130429, "Rate limit (refused)"],
  [131056, "Pair rate limit (refused)"], [131048, "Spam rate limit (refused)"], [131031, "Account locked (refused)"],
  [131042, "Payment issue (refused)"], [131000, "Something went wrong (refused)"], [131016, "Service unavailable (refused)"],
  [131057, "Maintenance mode (refused)"], [368, "Policy block (refused)"]];

function renderSettings() {
  const cards = h("div", { class: "page settings" }, h("h2", null, "Settings"));
  shell.view.replaceChildren(cards);
  const get = (path) => api("GET", path).catch((err) => err); // each card shows its own error
  const load = loader(() => {
    const parts = [["main", "/v1/configs/webhook", webhookCard], ["waba", "/waba_webhook", wabaCard], ["multi", "/multi_webhook", multiCard]];
    if (auth.channel?.sandbox) parts.push(["scenario", "/sandbox/scenario", scenarioCard]);
    return Promise.all(parts.map(async ([id, path, make]) => ({ id, data: await get(path), make })));
  }, (items) => {
    // Only a card whose data changed is drawn again: the others keep what is being typed in them.
    const sig = (item) => JSON.stringify(item.data instanceof Error ? item.data.message : item.data);
    cards.replaceChildren(cards.firstChild, ...keyed(cards, items, sig, (item) => item.make(item.data, load)));
  });
  load();
  return { refresh: (changes) => touching(changes, "config").length && load() };
}

function card(title, data, ...body) {
  return h("section", { class: "card" }, h("h3", null, title), data instanceof Error ? h("p", { class: "card-error" }, data.message) : body);
}

const field = (label, input, hint) => h("label", { class: "field" }, h("span", null, label), input, hint ? h("small", { class: "muted" }, hint) : null);
const saveButton = (testid, onclick, label = "Save") => h("button", { class: "primary", testid, onclick }, label);
const headersInput = (testid, headers, rows = 2) => h("textarea", { testid, rows, value: headersText(headers), placeholder: "Name: value" });

/** Calls the API when `build` can make the body (it throws to say why not); reloads the settings when it worked. */
function save(method, path, build, message, reload) {
  let body;
  try {
    body = build();
  } catch (err) {
    return showError(err);
  }
  return act(() => api(method, path, body), message).then((ok) => ok && reload());
}

function webhookCard(data, reload) {
  const url = h("input", { testid: "webhook-url", value: data.url || "", placeholder: "https://example.com/webhook (empty removes it)" });
  const headers = headersInput("webhook-headers", data.headers);
  const secret = h("input", { type: "password", testid: "webhook-secret", placeholder: "unchanged", autocomplete: "off" });
  const appSecret = h("input", { type: "password", testid: "webhook-app-secret", placeholder: "unchanged", autocomplete: "off" });
  const clear = h("input", { type: "checkbox", testid: "webhook-clear-secrets" });
  const build = () => {
    const body = { url: url.value.trim(), headers: parseHeaders(headers.value), ...(clear.checked ? { secret: "", app_secret: "" } : {}) };
    if (secret.value) body.secret = secret.value;
    if (appSecret.value) body.app_secret = appSecret.value;
    [secret.value, appSecret.value, clear.checked] = ["", "", false]; // secrets are never kept on screen
    return body;
  };
  return card("This number's webhook", data, field("URL", url), field("Headers sent with every delivery", headers, "One “Name: value” per line"),
    field("Signing secret (whsec_…)", secret, "Standard Webhooks signatures; empty keeps the current one"),
    field("App secret", appSecret, "Meta's X-Hub-Signature-256; empty keeps the current one"),
    h("label", { class: "check" }, clear, " Remove both secrets"),
    saveButton("webhook-save", () => save("POST", "/v1/configs/webhook", build, url.value.trim() ? "Webhook saved" : "Webhook removed", reload)));
}

function wabaCard(data, reload) {
  const url = h("input", { testid: "waba-url", value: data.url || "", placeholder: "https://example.com/waba-webhook (empty removes it)" });
  const headers = headersInput("waba-headers", data.headers);
  const override = h("input", { type: "checkbox", testid: "waba-override", checked: !!data.override_all });
  const build = () => ({ url: url.value.trim(), headers: parseHeaders(headers.value), override_all: override.checked });
  return card("WABA webhook", data,
    h("p", { class: "muted small" }, `WABA ${data.waba_id}; numbers: ${(data.numbers_on_this_waba || []).join(", ")}`),
    field("URL", url), field("Headers", headers, "One “Name: value” per line"),
    h("label", { class: "check" }, override, " Override every number's own webhook (override_all)"),
    saveButton("waba-save", () => save("POST", "/waba_webhook", build, (r) => r.message, reload)));
}

function multiCard(data, reload) {
  const call = (method, path, build, message) => save(method, path, build, message, reload);
  const fanout = h("select", { testid: "multi-fanout" }, h("option", { value: "after_main" }, "after main 200 (default)"),
    h("option", { value: "independent" }, "independent"));
  const toggle = data.enabled
    ? h("button", { testid: "multi-disable", onclick: () => call("POST", "/multi_webhook", () => ({ enabled: false }), "Multi-webhook disabled") },
      "Disable (removes the destinations)")
    : h("button", { testid: "multi-enable", onclick: () => call("POST", "/multi_webhook", () => ({ enabled: true, fanout: fanout.value }),
      "Multi-webhook enabled") }, "Enable");
  const destination = (d) => {
    const url = h("input", { testid: "multi-url", data: { name: d.name }, value: d.url });
    const headers = headersInput("multi-headers", d.headers, 1);
    const build = () => ({ name: d.name, url: url.value.trim(), headers: parseHeaders(headers.value) });
    return h("div", { class: "destination", testid: "multi-destination", data: { name: d.name } },
      h("strong", null, d.name), field("URL", url), field("Headers", headers),
      h("div", { class: "buttons-row" }, h("button", { testid: "multi-save", data: { name: d.name },
        onclick: () => call("PATCH", "/multi_webhook", build, `${d.name} saved`) }, "Save"),
      h("button", { class: "danger", testid: "multi-delete", data: { name: d.name },
        onclick: () => call("DELETE", `/multi_webhook/${encodeURIComponent(d.name)}`, () => undefined, `${d.name} removed`) }, "Remove")));
  };
  const name = h("input", { testid: "multi-new-name", placeholder: "name" });
  const url = h("input", { testid: "multi-new-url", placeholder: "https://…" });
  const headers = headersInput("multi-new-headers", {}, 1);
  const add = () => {
    const build = () => ({ destinations: [{ name: name.value.trim(), url: url.value.trim(), headers: parseHeaders(headers.value) }] });
    if (data.enabled) call("PUT", "/multi_webhook", build, "Destination added");
    else call("POST", "/multi_webhook", () => ({ enabled: true, fanout: fanout.value, ...build() }), "Multi-webhook enabled");
  };
  return card("Multi-webhook", data,
    h("p", { class: "small", testid: "multi-status" }, data.enabled ? `Enabled · fanout ${data.fanout}` : "Disabled"),
    data.enabled ? null : field("Fanout", fanout), toggle, (data.destinations || []).map(destination),
    h("div", { class: "destination" }, h("strong", null, "Add a destination"), field("Name", name), field("URL", url),
      field("Headers", headers), saveButton("multi-add", add, "Add")));
}

/** "2" -> 2, "1-5" or "1,5" -> [1, 5], "" -> not set. */
function parseDelay(text) {
  const parts = text.trim().split(/\s*[-,–]\s*/).filter(Boolean).map(Number);
  if (parts.some(Number.isNaN) || parts.length > 2) throw new Error(`Delay "${text}" is not seconds (2) or bounds (1-5)`);
  return parts.length > 1 ? parts : parts[0];
}

function scenarioCard(data, reload) {
  const s = data.scenario || {};
  const delays = Object.fromEntries(["sent", "delivered", "read"].map((step) => [step, h("input", { testid: `delay-${step}`,
    inputmode: "decimal", placeholder: "default", value: [s.delays?.[step] ?? ""].flat().join("-") })]));
  const check = (testid, on, label) => h("label", { class: "check" }, h("input", { type: "checkbox", testid, checked: !!on }), label);
  const checks = [check("drop-delivered", s.drop?.includes("delivered"), " drop delivered"),
    check("drop-read", s.drop?.includes("read"), " drop read (never reads)"), check("out-of-order", s.out_of_order, " read before delivered")];
  const checked = (i) => checks[i].firstChild.checked;
  const duplicates = h("input", { type: "number", min: 0, max: 5, testid: "duplicates", value: s.duplicates ?? "" });
  const seed = h("input", { type: "number", min: 0, testid: "seed", value: s.seed ?? "" });
  const code = h("select", { testid: "fail-code" }, h("option", { value: "" }, "no failures"),
    FAIL_CODES.map(([c, title]) => h("option", { value: c }, `${c} · ${title}`)));
  code.value = s.fail ? String(s.fail.code) : "";
  const mode = h("select", { testid: "fail-mode" }, h("option", { value: "always" }, "every message"),
    h("option", { value: "probability" }, "with probability"), h("option", { value: "next" }, "the next N messages"));
  mode.value = s.fail?.next != null ? "next" : s.fail?.probability < 1 ? "probability" : "always";
  const amount = h("input", { testid: "fail-value", inputmode: "decimal", placeholder: "0.3 or N",
    value: s.fail?.next ?? (s.fail?.probability < 1 ? s.fail.probability : "") });
  const raw = h("textarea", { class: "code", rows: 8, testid: "scenario-json", value: JSON.stringify(s, null, 2) });
  const fromControls = () => {
    const body = { ...s }; // rules and script stay as they are: the raw JSON edits them
    for (const key of ["delays", "drop", "out_of_order", "duplicates", "fail", "seed", "never_reads", "skip_delivered"]) delete body[key];
    const chosen = Object.entries(delays).map(([step, input]) => [step, parseDelay(input.value)]).filter(([, v]) => v !== undefined);
    if (chosen.length) body.delays = Object.fromEntries(chosen);
    const dropped = ["delivered", "read"].filter((_, i) => checked(i));
    if (dropped.length) body.drop = dropped;
    if (checked(2)) body.out_of_order = true;
    if (duplicates.value !== "") body.duplicates = Number(duplicates.value);
    if (seed.value !== "") body.seed = Number(seed.value);
    if (code.value) body.fail = { code: Number(code.value) };
    if (code.value && mode.value !== "always") body.fail[mode.value] = Number(amount.value || 1);
    return body;
  };
  const fromJson = () => parseJson(raw.value || "{}") ?? fail("The raw scenario is not valid JSON");
  const put = (build) => save("PUT", "/sandbox/scenario", build, "Scenario saved", reload);
  const clear = () => save("DELETE", "/sandbox/scenario", () => undefined, "Scenario cleared: the sandbox behaves normally", reload);
  return card("Sandbox behaviour (this number's scenario)", data,
    h("p", { class: "muted small" }, "Status delays in seconds after acceptance: fixed (2) or random within bounds (1-5); empty: the default."),
    h("div", { class: "grid3" }, Object.entries(delays).map(([step, input]) => field(step, input))), h("div", { class: "checks" }, checks),
    h("div", { class: "grid3" }, field("Duplicates (0–5)", duplicates), field("Seed", seed)),
    h("div", { class: "grid3" }, field("Fail with", code), field("When", mode), field("Probability / N", amount)),
    h("div", { class: "buttons-row" }, saveButton("scenario-save", () => put(fromControls)),
      h("button", { class: "danger", testid: "scenario-clear", onclick: clear }, "Clear scenario")),
    h("details", { class: "raw" }, h("summary", null, "Raw JSON (rules, script, everything)"), raw,
      h("button", { testid: "scenario-json-save", onclick: () => put(fromJson) }, "Save JSON")));
}

// ---------------------------------------------------------------- live stream
let stream = null; // the AbortController of the running stream
let queued = [];
let flushTimer = 0;

const setLive = (on) => shell && (shell.live.dataset.state = on ? "on" : "off");

/** Reads GET /console/stream for as long as the shell is shown; reconnects with backoff (1 s doubling to 30 s). */
function startStream() {
  if (stream) return;
  const controller = (stream = new AbortController());
  (async () => {
    let [backoff, connectedBefore] = [1000, false];
    while (!controller.signal.aborted) {
      try {
        const res = await fetch("/console/stream", { headers: authHeaders(), signal: controller.signal, cache: "no-store" });
        if (res.status === 401) return signOut("Signed out: the key is no longer accepted");
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        setLive(true);
        if (connectedBefore) queueChange({ what: "all", wa_id: null }); // what changed meanwhile was not heard
        [backoff, connectedBefore] = [1000, true];
        // A change that cannot be read means "fetch everything again".
        await readEvents(res.body, (event, data) => event === "change" && queueChange(parseJson(data) || { what: "all" }));
      } catch {
        // dropped, refused or aborted: the loop decides
      }
      setLive(false);
      if (controller.signal.aborted) return;
      await sleep(backoff + Math.random() * 500);
      backoff = Math.min(backoff * 2, 30000);
    }
  })();
}

function stopStream() {
  stream?.abort();
  stream = null;
}

/** Parses text/event-stream: `event:` and `data:` lines, a blank line ends an event, `:` lines are comments. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let [buffer, event, data] = ["", "message", []];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const lines = (buffer + value).split("\n");
    buffer = lines.pop();
    for (const line of lines.map((l) => l.replace(/\r$/, ""))) {
      if (line === "") {
        if (data.length) onEvent(event, data.join("\n"));
        [event, data] = ["message", []];
      } else if (!line.startsWith(":")) {
        const at = line.includes(":") ? line.indexOf(":") : line.length;
        const text = line.slice(at + 1).replace(/^ /, "");
        if (line.slice(0, at) === "event") event = text;
        else if (line.slice(0, at) === "data") data.push(text);
      }
    }
  }
}

/** Collects changes for ~150 ms, then lets the view on screen fetch again what they touch. */
function queueChange(change) {
  queued.push(change);
  if (flushTimer) return;
  flushTimer = setTimeout(() => {
    const changes = queued;
    [queued, flushTimer] = [[], 0];
    view?.refresh(changes);
  }, 150);
}

// ---------------------------------------------------------------- start
window.addEventListener("hashchange", route);
document.addEventListener("click", (ev) => ev.target.closest(".picker, .react") || $$(".picker").forEach((p) => p.remove()));
route();
