/* The agents' inbox: conversation list, thread, composer, live over /ws/inbox/.
 *
 * Push is a hint, REST is the truth: every websocket event only says *what* changed; the page refetches
 * that from /api/v1/ and ignores anything older (by `version`) than what it shows. Everything a user or
 * TikTok provided is put into the page with textContent, never parsed as HTML.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("inbox-config").textContent);
  const API = config.api;
  const ME = config.user.id;
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- small DOM helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(viewBox, paths, cls) {
    const root = document.createElementNS(SVG_NS, "svg");
    root.setAttribute("viewBox", viewBox);
    root.setAttribute("aria-hidden", "true");
    root.setAttribute("class", cls || "icon");
    for (const [tag, attrs] of paths) {
      const shape = document.createElementNS(SVG_NS, tag);
      for (const [key, value] of Object.entries(attrs)) shape.setAttribute(key, value);
      root.append(shape);
    }
    return root;
  }

  function isHttpUrl(value) {
    try {
      const url = new URL(value, location.href);
      return url.protocol === "https:" || url.protocol === "http:" || url.protocol === "blob:";
    } catch (e) {
      return false;
    }
  }

  function isTikTokEmbed(value) {
    try {
      const url = new URL(value);
      return url.protocol === "https:" && url.hostname === "www.tiktok.com";
    } catch (e) {
      return false;
    }
  }

  // ---------------------------------------------------------------- time

  const pad = (n) => String(n).padStart(2, "0");

  function parseTime(value) {
    return value ? new Date(value) : null;
  }

  function shortAgo(value) {
    const at = parseTime(value);
    if (!at) return "";
    const seconds = Math.max(0, (Date.now() - at.getTime()) / 1000);
    if (seconds < 60) return "now";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m";
    if (seconds < 86400) return Math.floor(seconds / 3600) + "h";
    if (seconds < 7 * 86400) return Math.floor(seconds / 86400) + "d";
    return at.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  }

  function clockTime(value) {
    const at = parseTime(value);
    return at ? at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) : "";
  }

  function fullTime(value) {
    const at = parseTime(value);
    return at ? at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) : "";
  }

  function dayLabel(date) {
    const today = new Date();
    const yesterday = new Date(Date.now() - 86400000);
    if (date.toDateString() === today.toDateString()) return "Today";
    if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
    return date.toLocaleDateString(undefined, { weekday: "short", month: "short", day: "numeric" });
  }

  function duration(ms, withSeconds) {
    const total = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    if (withSeconds) return h + ":" + pad(m) + ":" + pad(s);
    if (h > 0) return h + "h " + pad(m) + "m";
    if (m > 0) return m + "m";
    return "<1m";
  }

  function windowLeft(conv) {
    const closes = parseTime(conv.reply_window_closes_at);
    if (!closes) return null;
    return closes.getTime() - Date.now();
  }

  // ---------------------------------------------------------------- API

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.split("=")[1]) : input ? input.value : "";
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path.startsWith("/") ? path : API + path, init);
    } catch (e) {
      return { ok: false, status: 0, data: { code: "network", message: "The server cannot be reached." } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (response.status === 401 || (response.status === 403 && data && data.code === "not_authenticated")) {
      location.href = config.login_url + "?next=" + encodeURIComponent(location.pathname);
    }
    return { ok: response.ok, status: response.status, data: data || {} };
  }

  // Runs fn for key once at a time; calls made meanwhile collapse into one more run after it.
  const running = new Map();
  function coalesce(key, fn) {
    const current = running.get(key);
    if (current) {
      current.again = true;
      return;
    }
    const job = { again: false };
    running.set(key, job);
    (async () => {
      try {
        do {
          job.again = false;
          await fn();
        } while (job.again);
      } finally {
        running.delete(key);
      }
    })();
  }

  // ---------------------------------------------------------------- state

  const saved = (() => {
    try {
      return JSON.parse(localStorage.getItem("inbox.filters") || "{}");
    } catch (e) {
      return {};
    }
  })();

  const state = {
    tab: ["mine", "unassigned", "all"].includes(saved.tab) ? saved.tab : "all",
    status: ["open", "pending", "resolved"].includes(saved.status) ? saved.status : "open",
    ordering: saved.ordering === "window" ? "window" : "last_activity",
    q: "",
    convs: new Map(), // id -> conversation (detail or list shape), newest version seen
    order: [], // ids shown in the list, in order
    next: null, // cursor URL of the list's next page
    listSeq: 0,
    currentId: null,
    contact: null,
    messages: new Map(), // id -> message of the open thread
    messagesNext: null,
    threadSeq: 0,
    quote: null,
    image: null,
    shareMode: false,
  };

  function saveFilters() {
    try {
      localStorage.setItem(
        "inbox.filters",
        JSON.stringify({ tab: state.tab, status: state.status, ordering: state.ordering })
      );
    } catch (e) {
      /* private mode: filters are simply not remembered */
    }
  }

  // ---------------------------------------------------------------- toasts

  function toast(text, kind) {
    const node = el("div", { class: "toast toast-" + (kind || "info"), role: "status", text });
    $("toasts").append(node);
    setTimeout(() => node.classList.add("toast-out"), 4500);
    setTimeout(() => node.remove(), 5000);
  }

  function apiError(result, fallback) {
    toast((result.data && result.data.message) || fallback || "Something went wrong.", "error");
  }

  // ---------------------------------------------------------------- avatars and names

  function contactName(contact) {
    return (contact && (contact.display_name || contact.tiktok_user_id)) || "TikTok user";
  }

  function initials(name) {
    const parts = String(name).trim().split(/\s+/).filter(Boolean);
    const letters = parts.slice(0, 2).map((p) => Array.from(p)[0] || "");
    return (letters.join("") || "?").toUpperCase();
  }

  function hue(seed) {
    let h = 0;
    for (const ch of String(seed)) h = (h * 31 + ch.codePointAt(0)) % 360;
    return h;
  }

  const AVATAR_COLORS = 8;
  function fillAvatar(node, contact) {
    const name = contactName(contact);
    node.textContent = initials(name);
    node.dataset.color = String(hue((contact && contact.tiktok_user_id) || name) % AVATAR_COLORS);
  }

  // ---------------------------------------------------------------- conversation list

  function matchesFilters(conv) {
    if (state.status && conv.status !== state.status) return false;
    if (state.tab === "mine" && !(conv.assignee && conv.assignee.id === ME)) return false;
    if (state.tab === "unassigned" && conv.assignee) return false;
    return true;
  }

  const FAR = 100 * 365 * 86400000;
  function sortKey(conv) {
    if (state.ordering === "window") {
      const inbound = parseTime(conv.last_inbound_at);
      if (!inbound) return [Date.now() + 2 * FAR, conv.id];
      const t = inbound.getTime();
      return [Date.now() - t < config.reply_window_hours * 3600000 ? t : t + FAR, conv.id];
    }
    return [-parseTime(conv.last_activity_at).getTime(), -conv.id];
  }

  function compareConvs(a, b) {
    const ka = sortKey(a);
    const kb = sortKey(b);
    return ka[0] - kb[0] || ka[1] - kb[1];
  }

  function listParams() {
    const params = new URLSearchParams({ status: state.status, ordering: state.ordering, page_size: "40" });
    if (state.tab === "mine") params.set("assignee", "me");
    if (state.tab === "unassigned") params.set("assignee", "none");
    if (state.q) params.set("q", state.q);
    return params;
  }

  async function loadList() {
    const seq = ++state.listSeq;
    const result = await api("GET", "conversations/?" + listParams());
    if (seq !== state.listSeq) return; // a newer load (other filters) is on its way
    if (!result.ok) return apiError(result, "Conversations could not be loaded.");
    state.order = [];
    for (const conv of result.data.results) storeConv(conv);
    state.order = result.data.results.map((c) => c.id);
    state.next = result.data.next;
    renderList();
  }

  async function loadMore() {
    if (!state.next) return;
    const seq = state.listSeq;
    const result = await api("GET", state.next);
    if (seq !== state.listSeq || !result.ok) return;
    for (const conv of result.data.results) {
      storeConv(conv);
      if (!state.order.includes(conv.id)) state.order.push(conv.id);
    }
    state.next = result.data.next;
    renderList();
  }

  // Keeps the newest version of a conversation; returns false when `conv` is older than what is shown.
  function storeConv(conv) {
    const shown = state.convs.get(conv.id);
    if (shown && conv.version < shown.version) return false;
    state.convs.set(conv.id, shown && shown.referral_data && !conv.referral_data ? { ...shown, ...conv } : conv);
    return true;
  }

  let listSearchReload = null;
  function placeInList(conv) {
    const index = state.order.indexOf(conv.id);
    if (index >= 0) state.order.splice(index, 1);
    if (!matchesFilters(conv)) return;
    if (state.q && index < 0) {
      // Whether it matches the search only the server knows: reload the list (once for a burst).
      clearTimeout(listSearchReload);
      listSearchReload = setTimeout(loadList, 300);
      return;
    }
    const others = state.order.map((id) => state.convs.get(id));
    let at = others.findIndex((other) => compareConvs(conv, other) < 0);
    if (at < 0) {
      if (state.next) return; // sorts after the loaded rows: it belongs to a later page
      at = others.length;
    }
    state.order.splice(at, 0, conv.id);
  }

  function windowChip(conv) {
    const left = windowLeft(conv);
    if (left === null) return el("span", { class: "window-chip window-none", text: "No window" });
    if (left <= 0) return el("span", { class: "window-chip window-closed", text: "Closed", title: "Reply window closed" });
    const cls = left < 3600000 ? "window-danger" : left < 6 * 3600000 ? "window-warn" : "window-ok";
    return el("span", {
      class: "window-chip " + cls,
      text: duration(left) + " left",
      title: "Reply window closes " + fullTime(conv.reply_window_closes_at),
    });
  }

  function previewText(last) {
    if (!last) return "No messages yet";
    const byUs = last.direction === "out" ? "You: " : "";
    const kinds = {
      image: "📷 Photo",
      share_post: "▶ Shared a post",
      reaction: "Reacted " + (last.text || ""),
      referral: "Came from a referral",
      unsupported: "Unsupported message",
    };
    const body = last.type === "text" ? last.text : last.text || kinds[last.type] || last.type;
    return byUs + String(body).replace(/\s+/g, " ").trim();
  }

  function renderRow(conv) {
    const name = contactName(conv.contact);
    const avatar = el("div", { class: "avatar", "aria-hidden": "true" });
    fillAvatar(avatar, conv.contact);
    const meta = el("div", { class: "row-meta" }, windowChip(conv));
    if (conv.priority && conv.priority !== "none") {
      meta.append(el("span", { class: "prio prio-" + conv.priority, text: conv.priority }));
    }
    if (conv.referral) {
      meta.append(
        el("span", {
          class: "ref-chip",
          text: conv.referral.source === "ad" ? "Ad" : conv.referral.source === "tiktok_me" ? "TikTok.me" : "Referral",
        })
      );
    }
    if (conv.assignee) {
      meta.append(
        el("span", {
          class: "assignee-chip" + (conv.assignee.id === ME ? " assignee-me" : ""),
          text: conv.assignee.id === ME ? "You" : conv.assignee.name,
          title: "Assigned to " + conv.assignee.name,
        })
      );
    }
    const unread = conv.unread_count > 0 ? el("span", { class: "unread-badge", text: String(conv.unread_count) }) : null;
    const link = el(
      "a",
      {
        href: config.conversation_url.replace("/0/", "/" + conv.id + "/"),
        class: "row-link",
        onclick: (event) => {
          if (event.metaKey || event.ctrlKey || event.shiftKey) return;
          event.preventDefault();
          openConversation(conv.id, true);
        },
      },
      avatar,
      el(
        "div",
        { class: "row-main" },
        el(
          "div",
          { class: "row-top" },
          el("span", { class: "row-name", text: name }),
          el("time", { class: "row-time", text: shortAgo(conv.last_activity_at), title: fullTime(conv.last_activity_at) })
        ),
        el("div", { class: "row-bottom" }, el("span", { class: "row-preview", text: previewText(conv.last_message) }), unread),
        meta
      )
    );
    return el(
      "li",
      {
        class: "conv-row" + (conv.id === state.currentId ? " active" : "") + (conv.unread_count > 0 ? " has-unread" : ""),
        dataset: { id: String(conv.id), version: String(conv.version) },
      },
      link
    );
  }

  function renderList() {
    const list = $("conversation-list");
    const rows = state.order.map((id) => renderRow(state.convs.get(id)));
    list.replaceChildren(...rows);
    $("list-empty").hidden = rows.length > 0;
    $("load-more").hidden = !state.next;
    const unread = state.order.reduce((n, id) => n + (state.convs.get(id).unread_count > 0 ? 1 : 0), 0);
    document.title = (unread ? "(" + unread + ") " : "") + "Inbox · TikTok Inbox";
  }

  function renderControls() {
    for (const tab of document.querySelectorAll(".tab")) {
      tab.setAttribute("aria-selected", String(tab.dataset.tab === state.tab));
    }
    for (const seg of document.querySelectorAll(".seg")) {
      seg.classList.toggle("active", seg.dataset.status === state.status);
      seg.setAttribute("aria-pressed", String(seg.dataset.status === state.status));
    }
    $("ordering").value = state.ordering;
  }

  // Fetch one conversation and put it wherever it now belongs (list row, open thread).
  function refreshConversation(id) {
    coalesce("conv:" + id, async () => {
      const result = await api("GET", "conversations/" + id + "/");
      if (result.status === 404) {
        dropConversation(id);
        return;
      }
      if (!result.ok) return;
      applyConversation(result.data);
    });
  }

  function applyConversation(conv) {
    if (!storeConv(conv)) return;
    const stored = state.convs.get(conv.id);
    placeInList(stored);
    renderList();
    if (conv.id === state.currentId) renderThreadChrome();
  }

  function dropConversation(id) {
    state.order = state.order.filter((other) => other !== id);
    state.convs.delete(id);
    renderList();
  }

  // ---------------------------------------------------------------- the open conversation

  function currentConv() {
    return state.convs.get(state.currentId);
  }

  async function openConversation(id, push) {
    if (push && id !== state.currentId) {
      history.pushState({ id }, "", config.conversation_url.replace("/0/", "/" + id + "/"));
    }
    const switching = id !== state.currentId;
    state.currentId = id;
    if (switching) {
      state.messages = new Map();
      state.messagesNext = null;
      state.contact = null;
      clearQuote();
      clearAttachment();
      closeShare();
      $("composer-text").value = "";
      $("message-items").replaceChildren();
      $("thread-placeholder").hidden = true;
      $("thread").hidden = false;
      $("side-panel").hidden = false;
    }
    renderList();
    const seq = ++state.threadSeq;
    const [conv, page] = await Promise.all([
      api("GET", "conversations/" + id + "/"),
      api("GET", "conversations/" + id + "/messages/?order=desc&page_size=50"),
    ]);
    if (seq !== state.threadSeq) return;
    if (!conv.ok) {
      if (conv.status === 404) toast("That conversation does not exist or is not in your inboxes.", "error");
      closeThread();
      return;
    }
    state.convs.delete(id); // the fresh detail replaces whatever the list had
    applyConversation(conv.data);
    if (page.ok) {
      for (const message of page.data.results) storeMessage(message);
      if (switching || !state.messagesNext) state.messagesNext = page.data.next;
    }
    renderThread(switching ? "bottom" : "keep");
    markRead(id);
    loadContact();
    if (switching) $("composer-text").focus();
  }

  function closeThread() {
    state.currentId = null;
    $("thread").hidden = true;
    $("side-panel").hidden = true;
    $("thread-placeholder").hidden = false;
    if (location.pathname !== config.home) history.replaceState({}, "", config.home);
    renderList();
  }

  async function loadEarlier() {
    if (!state.messagesNext) return;
    const id = state.currentId;
    const result = await api("GET", state.messagesNext);
    if (id !== state.currentId || !result.ok) return;
    for (const message of result.data.results) storeMessage(message);
    state.messagesNext = result.data.next;
    renderThread("top");
  }

  async function loadContact() {
    const conv = currentConv();
    if (!conv) return;
    const result = await api("GET", "contacts/" + conv.contact.id + "/");
    if (!result.ok || conv.id !== state.currentId) return;
    state.contact = result.data;
    renderSidePanel();
  }

  // Per conversation, so opening the next one does not cancel this one's receipt; a burst of inbound
  // messages in the open thread makes one call.
  const readTimers = new Map();
  function markRead(id) {
    id = id || state.currentId;
    if (!id) return;
    clearTimeout(readTimers.get(id));
    readTimers.set(
      id,
      setTimeout(async () => {
        readTimers.delete(id);
        if (document.visibilityState !== "visible") return;
        const result = await api("POST", "conversations/" + id + "/read/");
        if (result.ok) applyConversation(result.data);
      }, 100)
    );
  }

  function storeMessage(message) {
    const shown = state.messages.get(message.id);
    if (shown && message.version < shown.version) return false;
    state.messages.set(message.id, message);
    return true;
  }

  function refreshMessage(id) {
    coalesce("msg:" + id, async () => {
      const result = await api("GET", "messages/" + id + "/");
      if (!result.ok || result.data.conversation_id !== state.currentId) return;
      const isNew = !state.messages.has(id);
      if (storeMessage(result.data)) renderThread(isNew ? "follow" : "keep");
    });
  }

  // Everything above the messages: header, actions, banner, composer state, side panel.
  function renderThreadChrome() {
    const conv = currentConv();
    if (!conv) return;
    fillAvatar($("thread-avatar"), conv.contact);
    $("thread-name").textContent = contactName(conv.contact);
    const sub = ["@" + conv.contact.tiktok_user_id, conv.inbox.name];
    if (conv.assignee) sub.push("Assigned to " + (conv.assignee.id === ME ? "you" : conv.assignee.name));
    else sub.push("Unassigned");
    $("thread-sub").textContent = sub.join(" · ");
    const status = $("thread-status");
    status.textContent = conv.status;
    status.className = "pill pill-" + conv.status;
    const mine = conv.assignee && conv.assignee.id === ME;
    $("assign-button").hidden = Boolean(mine);
    $("unassign-button").hidden = !conv.assignee;
    $("resolve-button").hidden = conv.status === "resolved";
    $("reopen-button").hidden = conv.status !== "resolved";
    $("priority-select").value = conv.priority;
    renderReferralBanner(conv);
    renderComposerState();
    renderSidePanel();
  }

  function renderReferralBanner(conv) {
    const banner = $("referral-banner");
    const referral = conv.referral;
    if (!referral) {
      banner.hidden = true;
      return;
    }
    const data = conv.referral_data || {};
    const title =
      referral.source === "ad" ? "Came from an ad" : referral.source === "tiktok_me" ? "Came via a TikTok.me link" : "Came from a referral";
    const parts = [el("strong", { text: title })];
    if (referral.label) parts.push(el("span", { class: "banner-label", text: referral.label }));
    if (data.prefilled_message) parts.push(el("span", { class: "muted", text: "Prefilled: “" + data.prefilled_message + "”" }));
    const url = data.source_url || data.embed_url;
    if (url && isHttpUrl(url)) {
      parts.push(el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "View" }));
    }
    banner.replaceChildren(el("span", { class: "banner-icon", "aria-hidden": "true", text: referral.source === "ad" ? "📣" : "🔗" }), ...parts);
    banner.dataset.source = referral.source;
    banner.hidden = false;
  }

  function fact(list, label, value, mono) {
    if (value === null || value === undefined || value === "") return;
    list.append(el("dt", { text: label }), el("dd", { class: mono ? "mono" : null, text: String(value) }));
  }

  const REFERRAL_LABELS = {
    source: "Source",
    ad_id: "Ad id",
    ad_name: "Ad",
    advertiser_id: "Advertiser id",
    message_material_id: "Material id",
    ref: "TikTok.me ref",
    prefilled_message: "Prefilled message",
    prefilled_message_audit_status: "Prefill audit",
    source_type: "Source type",
    source_id: "Source id",
    source_name: "Source name",
    source_url: "Source URL",
    creative_id: "Creative id",
    tracking_ref: "Tracking ref",
    source_status: "Source status",
    embed_url: "Embed URL",
  };

  function renderSidePanel() {
    const conv = currentConv();
    if (!conv) return;
    const contact = state.contact && state.contact.id === conv.contact.id ? state.contact : null;
    fillAvatar($("contact-avatar"), conv.contact);
    $("contact-name").textContent = contactName(conv.contact);
    $("contact-id").textContent = "@" + conv.contact.tiktok_user_id;
    const facts = $("contact-facts");
    facts.replaceChildren();
    fact(facts, "TikTok user id", conv.contact.tiktok_user_id, true);
    if (contact) {
      fact(facts, "Business account", contact.business_account_id, true);
      fact(facts, "First seen", fullTime(contact.first_seen_at));
      fact(facts, "Last seen", fullTime(contact.last_seen_at));
      const others = (contact.conversations || []).filter((c) => c.id !== conv.id);
      if (others.length) fact(facts, "Other inboxes", others.map((c) => c.inbox.name).join(", "));
    }
    const attribution = $("attribution-facts");
    attribution.replaceChildren();
    const data = conv.referral_data || {};
    for (const [key, label] of Object.entries(REFERRAL_LABELS)) {
      if (typeof data[key] === "string" || typeof data[key] === "number") fact(attribution, label, data[key], /id$/.test(key));
    }
    if (data.received_at) fact(attribution, "Referred", fullTime(data.received_at));
    if (!attribution.children.length) attribution.append(el("dd", { class: "muted", text: "Organic — no ad or TikTok.me referral." }));
    const about = $("conversation-facts");
    about.replaceChildren();
    fact(about, "Inbox", conv.inbox.name);
    fact(about, "Status", conv.status);
    fact(about, "Priority", conv.priority);
    fact(about, "Assignee", conv.assignee ? conv.assignee.name : "Nobody");
    fact(about, "Started", fullTime(conv.created_at));
    fact(about, "Customer last wrote", fullTime(conv.last_inbound_at));
    const conversions = conv.conversions || [];
    $("conversions-section").hidden = conversions.length === 0;
    $("conversions").replaceChildren(
      ...conversions.map((c) =>
        el(
          "li",
          { class: "conversion conversion-" + c.status },
          el("span", { text: c.event }),
          c.value ? el("span", { class: "muted", text: c.value + " " + (c.currency || "") }) : null,
          el("span", { class: "pill pill-small", text: c.status, title: c.error ? c.error.description || c.error.name : null })
        )
      )
    );
  }

  // ---------------------------------------------------------------- composer

  function lockReason(conv) {
    if (!conv.last_inbound_at) return "The customer has not written yet: on TikTok a conversation starts with them.";
    const left = windowLeft(conv);
    if (left <= 0) {
      return (
        "The " + config.reply_window_hours + "-hour reply window closed " + shortAgo(conv.reply_window_closes_at) +
        " ago. You can reply again when the customer writes."
      );
    }
    if (conv.replies_left <= 0) {
      return "All " + config.reply_quota + " replies for this window are used. You can reply again when the customer writes.";
    }
    return "";
  }

  function renderComposerState() {
    const conv = currentConv();
    if (!conv) return;
    const reason = lockReason(conv);
    const lock = $("composer-lock");
    lock.textContent = reason;
    lock.hidden = !reason;
    $("composer").classList.toggle("locked", Boolean(reason));
    for (const control of [$("composer-text"), $("image-input"), $("share-button"), $("send-button"), $("share-post-id")]) {
      control.disabled = Boolean(reason);
    }
    const left = windowLeft(conv);
    const countdown = $("window-countdown");
    if (left === null) {
      countdown.textContent = "No reply window yet";
      countdown.dataset.state = "none";
    } else if (left <= 0) {
      countdown.textContent = "Reply window closed";
      countdown.dataset.state = "closed";
    } else {
      countdown.textContent = duration(left, true) + " left to reply";
      countdown.dataset.state = left < 3600000 ? "danger" : left < 6 * 3600000 ? "warn" : "ok";
      countdown.title = "The window closes " + fullTime(conv.reply_window_closes_at);
    }
    const replies = $("replies-left");
    replies.textContent = left > 0 ? conv.replies_left + " of " + config.reply_quota + " replies left" : "";
    for (const button of document.querySelectorAll(".retry-button")) {
      const open = left > 0;
      button.disabled = !open || conv.replies_left <= 0;
      button.title = !open ? "The reply window is closed" : conv.replies_left <= 0 ? "No replies left in this window" : "Send it again";
    }
  }

  function setQuote(message) {
    state.quote = message.id;
    $("quote-text").textContent = snippet(message);
    $("quote-chip").hidden = false;
    $("composer-text").focus();
  }

  function clearQuote() {
    state.quote = null;
    $("quote-chip").hidden = true;
  }

  function clearAttachment() {
    if (state.image && state.image.url) URL.revokeObjectURL(state.image.url);
    state.image = null;
    $("image-input").value = "";
    $("attachment-chip").hidden = true;
  }

  function closeShare() {
    state.shareMode = false;
    $("share-post-id").value = "";
    $("share-row").hidden = true;
  }

  async function send(event) {
    event.preventDefault();
    const id = state.currentId;
    const conv = currentConv();
    if (!conv || lockReason(conv)) return;
    const text = $("composer-text").value;
    const postId = $("share-post-id").value.trim();
    const outgoing = [];
    if (state.image) {
      const form = new FormData();
      form.append("type", "image");
      form.append("image", state.image.file);
      outgoing.push(form);
    }
    if (state.shareMode && postId) outgoing.push({ type: "share_post", post_id: postId });
    if (text.trim()) outgoing.push({ type: "text", text });
    if (!outgoing.length) return;
    // The quote goes with the first message sent.
    if (state.quote) {
      if (outgoing[0] instanceof FormData) outgoing[0].append("quoted_message_id", String(state.quote));
      else outgoing[0].quoted_message_id = state.quote;
    }
    $("send-button").disabled = true;
    try {
      for (const body of outgoing) {
        const result = await api("POST", "conversations/" + id + "/messages/", body);
        if (!result.ok) {
          apiError(result, "The reply was not sent.");
          refreshConversation(id);
          return;
        }
        if (body === outgoing[0]) clearQuote();
        if (body instanceof FormData) clearAttachment();
        else if (body.type === "share_post") closeShare();
        else $("composer-text").value = "";
        if (id === state.currentId && storeMessage(result.data)) renderThread("bottom");
      }
      refreshConversation(id);
    } finally {
      $("send-button").disabled = false;
      renderComposerState();
    }
  }

  let lastTyping = 0;
  function typing() {
    const conv = currentConv();
    if (!conv || lockReason(conv) || !$("composer-text").value.trim()) return;
    if (Date.now() - lastTyping < 4000) return;
    lastTyping = Date.now();
    api("POST", "conversations/" + conv.id + "/typing/");
  }

  // ---------------------------------------------------------------- messages

  function snippet(message) {
    if (!message) return "Earlier message";
    if (message.type === "image") return "📷 Photo";
    if (message.type === "share_post") return "▶ Shared post";
    const text = (message.text || "").replace(/\s+/g, " ").trim();
    return text.length > 90 ? text.slice(0, 90) + "…" : text || message.type;
  }

  const ICONS = {
    queued: () =>
      svg("0 0 16 16", [
        ["circle", { cx: "8", cy: "8", r: "6.2", fill: "none", stroke: "currentColor", "stroke-width": "1.6" }],
        ["path", { d: "M8 4.6V8l2.4 1.6", fill: "none", stroke: "currentColor", "stroke-width": "1.6", "stroke-linecap": "round" }],
      ]),
    accepted: () =>
      svg("0 0 16 16", [["path", { d: "M2.5 8.6l3.3 3.2 7.4-7.6", fill: "none", stroke: "currentColor", "stroke-width": "1.8", "stroke-linecap": "round", "stroke-linejoin": "round" }]]),
    double: () =>
      svg("0 0 22 16", [
        ["path", { d: "M1.5 8.6l3.3 3.2 7.4-7.6", fill: "none", stroke: "currentColor", "stroke-width": "1.8", "stroke-linecap": "round", "stroke-linejoin": "round" }],
        ["path", { d: "M9.6 11.2l.6.6 7.4-7.6", fill: "none", stroke: "currentColor", "stroke-width": "1.8", "stroke-linecap": "round", "stroke-linejoin": "round" }],
      ], "icon icon-wide"),
    failed: () =>
      svg("0 0 16 16", [
        ["path", { d: "M8 1.6l7 12.6H1z", fill: "currentColor" }],
        ["path", { d: "M8 6v4", stroke: "#fff", "stroke-width": "1.6", "stroke-linecap": "round" }],
        ["circle", { cx: "8", cy: "12.2", r: "0.9", fill: "#fff" }],
      ]),
  };

  const STATUS_LABELS = { queued: "Queued", accepted: "Sent", delivered: "Delivered", seen: "Seen", failed: "Not delivered" };

  function statusTitle(message) {
    const lines = [STATUS_LABELS[message.status] || message.status];
    for (const [key, label] of [
      ["queued_at", "Queued"],
      ["accepted_at", "Accepted by Infobip"],
      ["delivered_at", "Delivered"],
      ["seen_at", "Seen"],
      ["failed_at", "Failed"],
    ]) {
      if (message[key]) lines.push(label + ": " + fullTime(message[key]));
    }
    if (message.provider_status_name) lines.push("Infobip status: " + message.provider_status_name);
    if (message.error) {
      const error = message.error;
      lines.push(
        "Error: " + [error.name, error.description].filter(Boolean).join(" — ") + (error.permanent ? " (permanent)" : "")
      );
    }
    if (message.attempt > 1) lines.push("Attempt " + message.attempt);
    return lines.join("\n");
  }

  function ticks(message) {
    const status = message.status || "queued";
    const icon =
      status === "queued" ? ICONS.queued() : status === "accepted" ? ICONS.accepted() : status === "failed" ? ICONS.failed() : ICONS.double();
    return el(
      "span",
      { class: "ticks ticks-" + status, dataset: { status }, title: statusTitle(message), tabindex: "0", "aria-label": STATUS_LABELS[status] },
      icon
    );
  }

  function messageBody(message) {
    const body = el("div", { class: "msg-body" });
    switch (message.type) {
      case "image": {
        if (message.media_url && isHttpUrl(message.media_url)) {
          const link = el("a", { href: message.media_url, target: "_blank", rel: "noopener noreferrer", class: "msg-image-link" });
          const image = el("img", { src: message.media_url, alt: "Image from " + (message.direction === "in" ? "the customer" : "you"), loading: "lazy", class: "msg-image" });
          image.addEventListener("error", () => link.replaceChildren(el("span", { class: "image-missing", text: "📷 Image (preview unavailable) — open" })));
          link.append(image);
          body.append(link);
        } else body.append(el("span", { class: "image-missing", text: "📷 Image" }));
        if (message.text) body.append(el("div", { class: "msg-text", text: message.text }));
        break;
      }
      case "share_post": {
        const url = message.share_post_embed_url;
        const card = el("div", { class: "post-card" }, el("div", { class: "post-card-head" }, el("span", { class: "post-icon", "aria-hidden": "true", text: "▶" }), el("strong", { text: message.direction === "in" ? "Shared a TikTok post" : "You shared a TikTok post" })));
        if (message.post_id) card.append(el("div", { class: "muted small mono", text: "Post " + message.post_id }));
        if (url && isTikTokEmbed(url)) {
          const preview = el("button", { type: "button", class: "btn btn-small", text: "Show preview" });
          preview.addEventListener("click", () => {
            preview.replaceWith(el("iframe", { src: url, class: "post-embed", title: "TikTok post", loading: "lazy", sandbox: "allow-scripts allow-same-origin allow-popups", referrerpolicy: "no-referrer" }));
          });
          card.append(el("div", { class: "post-actions" }, preview, el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "Open on TikTok" })));
        } else if (url && isHttpUrl(url)) {
          card.append(el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "Open post" }));
        }
        if (message.text) card.append(el("div", { class: "msg-text", text: message.text }));
        body.append(card);
        break;
      }
      case "unsupported":
        body.append(el("em", { class: "muted", text: "This message type cannot be shown here — see it in TikTok." }));
        break;
      default:
        body.append(el("div", { class: "msg-text", text: message.text || "" }));
    }
    return body;
  }

  // Reactions point at the message they react to; the latest action per emoji wins (ADDED / REMOVED).
  function reactionsByTarget(messages) {
    const byTarget = new Map();
    for (const message of messages) {
      if (message.type !== "reaction" || !message.quoted_message_id) continue;
      const emojis = byTarget.get(message.quoted_message_id) || new Map();
      const removed = /remove|unreact|delete/i.test((message.reaction && message.reaction.action) || "");
      const emoji = (message.reaction && message.reaction.emoji) || message.text || "❤";
      if (removed) emojis.delete(emoji);
      else emojis.set(emoji, message);
      byTarget.set(message.quoted_message_id, emojis);
    }
    return byTarget;
  }

  function renderMessage(message, reactions) {
    const out = message.direction === "out";
    const bubble = el("div", { class: "bubble" });
    if (message.quoted_message_id || message.quoted_provider_message_id) {
      const quoted = state.messages.get(message.quoted_message_id);
      const quote = el("button", { type: "button", class: "quote", title: "Go to the quoted message" }, el("span", { class: "quote-bar", "aria-hidden": "true" }), el("span", { text: snippet(quoted) }));
      quote.addEventListener("click", () => {
        const target = document.querySelector('[data-message-id="' + Number(message.quoted_message_id) + '"]');
        if (target) {
          target.scrollIntoView({ block: "center", behavior: "smooth" });
          target.classList.add("flash");
          setTimeout(() => target.classList.remove("flash"), 1200);
        }
      });
      bubble.append(quote);
    }
    bubble.append(messageBody(message));
    const footer = el("div", { class: "msg-footer" });
    if (out && message.author) footer.append(el("span", { class: "msg-author", text: message.author.id === ME ? "You" : message.author.name }));
    footer.append(el("time", { class: "msg-time", text: clockTime(message.sent_at), title: fullTime(message.sent_at) }));
    if (out) footer.append(ticks(message));
    bubble.append(footer);
    const row = el(
      "div",
      {
        class: "msg msg-" + (out ? "out" : "in") + " msg-type-" + message.type + (message.status === "failed" ? " msg-failed" : ""),
        dataset: { messageId: String(message.id), status: message.status || "", version: String(message.version) },
      },
      bubble
    );
    if (reactions && reactions.size) {
      row.append(
        el(
          "div",
          { class: "reactions" },
          ...Array.from(reactions.entries()).map(([emoji, reaction]) =>
            el("span", { class: "reaction", text: emoji, title: (reaction.direction === "in" ? "Customer" : "You") + " reacted " + fullTime(reaction.sent_at) })
          )
        )
      );
    }
    const actions = el("div", { class: "msg-actions" });
    const reply = el("button", { type: "button", class: "link-button", text: "Reply", title: "Quote this message in your reply" });
    reply.addEventListener("click", () => setQuote(message));
    actions.append(reply);
    row.append(actions);
    if (message.status === "failed") {
      const error = message.error || {};
      const cause = [error.name, error.description].filter(Boolean).join(" — ") + (error.permanent ? " (permanent)" : "");
      const reason = [message.provider_status_name, cause].filter(Boolean).join(" · ") || "Infobip could not deliver it.";
      const retry = el("button", { type: "button", class: "btn btn-small retry-button", text: "Retry" });
      retry.addEventListener("click", () => retryMessage(message.id, retry));
      row.append(el("div", { class: "failure" }, el("span", { class: "failure-text", text: "Not delivered: " + reason }), retry));
    }
    return row;
  }

  async function retryMessage(id, button) {
    button.disabled = true;
    const result = await api("POST", "messages/" + id + "/retry/");
    if (!result.ok) {
      apiError(result, "The message could not be retried.");
      button.disabled = false;
      return;
    }
    if (result.data.conversation_id === state.currentId && storeMessage(result.data)) renderThread("keep");
    refreshConversation(result.data.conversation_id);
  }

  // Re-renders the thread from state. Unchanged messages keep their node (images and embeds stay put).
  function renderThread(scroll) {
    const box = $("messages");
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const previousHeight = box.scrollHeight;
    const all = Array.from(state.messages.values()).sort(
      (a, b) => new Date(a.sent_at) - new Date(b.sent_at) || a.id - b.id
    );
    const reactions = reactionsByTarget(all);
    const items = $("message-items");
    const old = new Map(Array.from(items.querySelectorAll(".msg")).map((node) => [node.dataset.messageId, node]));
    const nodes = [];
    let day = "";
    for (const message of all) {
      if (message.type === "reaction" && message.quoted_message_id && state.messages.has(message.quoted_message_id)) continue;
      const label = dayLabel(new Date(message.sent_at));
      if (label !== day) {
        day = label;
        nodes.push(el("div", { class: "day-separator" }, el("span", { text: label })));
      }
      if (message.type === "referral") {
        const source = (currentConv() && currentConv().referral && currentConv().referral.source) || "";
        const how = source === "ad" ? "from an ad" : source === "tiktok_me" ? "through a TikTok.me link" : "from a referral";
        nodes.push(
          el("div", { class: "system-line", dataset: { messageId: String(message.id) } }, "Customer opened the chat " + how + (message.text ? ": “" + message.text + "”" : ""))
        );
        continue;
      }
      if (message.type === "reaction") {
        nodes.push(el("div", { class: "system-line", text: "Customer reacted " + ((message.reaction && message.reaction.emoji) || "") + " to an earlier message" }));
        continue;
      }
      const mine = reactions.get(message.id);
      const signature = JSON.stringify([message, mine ? Array.from(mine.keys()) : [], snippet(state.messages.get(message.quoted_message_id))]);
      const existing = old.get(String(message.id));
      if (existing && existing.dataset.signature === signature) {
        nodes.push(existing);
        continue;
      }
      const node = renderMessage(message, mine);
      node.dataset.signature = signature;
      nodes.push(node);
    }
    items.replaceChildren(...nodes);
    $("load-earlier").hidden = !state.messagesNext;
    renderComposerState();
    if (scroll === "bottom" || (scroll === "follow" && nearBottom)) box.scrollTop = box.scrollHeight;
    else if (scroll === "top") box.scrollTop = box.scrollHeight - previousHeight;
  }

  // ---------------------------------------------------------------- live updates

  function handleEvent(event) {
    const id = event.conversation_id;
    switch (event.type) {
      case "conversation.created":
      case "conversation.updated": {
        const shown = state.convs.get(id);
        if (!shown || event.version > shown.version) refreshConversation(id);
        break;
      }
      case "message.created": {
        const shown = state.convs.get(id);
        if (!shown || event.version > shown.version || id === state.currentId) refreshConversation(id);
        if (id === state.currentId) {
          if (!state.messages.has(event.message_id)) refreshMessage(event.message_id);
          if (event.direction === "in") markRead();
        }
        break;
      }
      case "message.status":
      case "message.retried": {
        if (id !== state.currentId) break;
        const shown = state.messages.get(event.message_id);
        if (shown && event.version <= shown.version) break; // older than what is shown
        refreshMessage(event.message_id);
        if (event.status === "failed" || event.type === "message.retried") refreshConversation(id);
        break;
      }
      case "conversion.updated":
        if (id === state.currentId) refreshConversation(id);
        break;
      default:
        break;
    }
  }

  // After (re)connecting: whatever happened while we were away, the REST API knows.
  function resync() {
    loadList();
    if (state.currentId) openConversation(state.currentId, false);
  }

  const live = { socket: null, attempt: 0, timer: null, ping: null };

  function setLive(status, detail) {
    const badge = $("live-status");
    badge.dataset.state = status;
    badge.textContent = status === "live" ? "Live" : status === "connecting" ? "Connecting…" : "Offline — " + detail;
    badge.title =
      status === "live" ? "Live updates are on" : status === "connecting" ? "Connecting to live updates" : "Live updates are down: the list may be out of date";
  }

  function connect() {
    clearTimeout(live.timer);
    setLive("connecting");
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let socket;
    try {
      socket = new WebSocket(scheme + location.host + config.ws_path);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    live.socket = socket;
    socket.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      if (event.type === "hello") {
        live.attempt = 0;
        setLive("live");
        resync();
      } else if (event.type !== "pong") handleEvent(event);
    });
    socket.addEventListener("open", () => {
      clearInterval(live.ping);
      live.ping = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify({ type: "ping" })), 25000);
    });
    socket.addEventListener("close", (event) => {
      clearInterval(live.ping);
      if (live.socket !== socket) return;
      live.socket = null;
      if (event.code === 4401) {
        // Refused as anonymous: the session ended. Any API call sends us to the login page.
        api("GET", "conversations/?page_size=1");
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    const delay = Math.min(30000, 1000 * 2 ** live.attempt) * (0.6 + Math.random() * 0.4);
    live.attempt = Math.min(live.attempt + 1, 6);
    const until = Date.now() + delay;
    const tick = () => {
      const seconds = Math.ceil((until - Date.now()) / 1000);
      setLive("down", seconds > 0 ? "reconnecting in " + seconds + "s" : "reconnecting…");
    };
    tick();
    clearInterval(live.countdown);
    live.countdown = setInterval(tick, 1000);
    live.timer = setTimeout(() => {
      clearInterval(live.countdown);
      connect();
    }, delay);
  }

  window.addEventListener("online", () => {
    if (!live.socket) {
      clearInterval(live.countdown);
      live.attempt = 0;
      connect();
    }
  });

  // ---------------------------------------------------------------- wiring

  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      state.tab = tab.dataset.tab;
      saveFilters();
      renderControls();
      loadList();
    });
  }
  for (const seg of document.querySelectorAll(".seg")) {
    seg.addEventListener("click", () => {
      state.status = seg.dataset.status;
      saveFilters();
      renderControls();
      loadList();
    });
  }
  $("ordering").addEventListener("change", () => {
    state.ordering = $("ordering").value;
    saveFilters();
    loadList();
  });
  let searchTimer = null;
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.q = $("search").value.trim();
      loadList();
    }, 250);
  });
  $("load-more").addEventListener("click", loadMore);
  $("load-earlier").addEventListener("click", loadEarlier);

  const priority = $("priority-select");
  for (const choice of config.priorities) {
    priority.append(el("option", { value: choice.value, text: choice.value === "none" ? "No priority" : choice.label + " priority" }));
  }
  priority.addEventListener("change", () => action("priority", { priority: priority.value }));

  async function action(name, body) {
    const id = state.currentId;
    const result = await api("POST", "conversations/" + id + "/" + name + "/", body);
    if (!result.ok) {
      apiError(result);
      refreshConversation(id);
      return;
    }
    applyConversation(result.data);
  }
  $("assign-button").addEventListener("click", () => action("assign", { assignee: "me" }));
  $("unassign-button").addEventListener("click", () => action("unassign"));
  $("resolve-button").addEventListener("click", () => action("resolve"));
  $("reopen-button").addEventListener("click", () => action("reopen"));

  $("composer-form").addEventListener("submit", send);
  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer-form").requestSubmit();
    }
  });
  $("composer-text").addEventListener("input", typing);
  $("quote-clear").addEventListener("click", clearQuote);
  $("attachment-clear").addEventListener("click", clearAttachment);
  $("share-clear").addEventListener("click", closeShare);
  $("share-button").addEventListener("click", () => {
    state.shareMode = true;
    $("share-row").hidden = false;
    $("share-post-id").focus();
  });
  $("image-input").addEventListener("change", () => {
    const file = $("image-input").files[0];
    if (!file) return;
    if (!/^image\/(jpeg|png)$/.test(file.type)) {
      toast("Only JPG and PNG images can be sent.", "error");
      $("image-input").value = "";
      return;
    }
    if (file.size > 3 * 1024 * 1024) {
      toast("The image is larger than 3 MB.", "error");
      $("image-input").value = "";
      return;
    }
    clearAttachment();
    state.image = { file, url: URL.createObjectURL(file) };
    $("attachment-preview").src = state.image.url;
    $("attachment-name").textContent = file.name;
    $("attachment-chip").hidden = false;
  });

  window.addEventListener("popstate", () => {
    const match = location.pathname.match(/\/c\/(\d+)\/$/);
    if (match) openConversation(Number(match[1]), false);
    else closeThread();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.currentId) {
      const conv = currentConv();
      if (conv && conv.unread_count > 0) markRead();
    }
  });

  // Time left moves on without any event: the open composer every second, the list every 30 s.
  setInterval(() => {
    if (state.currentId) renderComposerState();
  }, 1000);
  setInterval(renderList, 30000);

  renderControls();
  loadList();
  if (config.conversation_id) openConversation(config.conversation_id, false);
  connect();
})();
