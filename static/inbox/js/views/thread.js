// The open conversation: header and actions, the messages (with notes), paging, read receipts.
import { coalesce } from "../api.js";
import { api, config, conversationUrl, currentConv, ME, state } from "../ctx.js";
import { $, apiError, el, fillAvatar, isHttpUrl, isTikTokEmbed, svg, toast } from "../dom.js";
import { clockTime, contactName, dayLabel, fullTime, snippet } from "../format.js";
import { commentModeration, filtersQuery, openThread, reactionsByTarget, sortedMessages, storeMessage } from "../store.js";
import { forgetCanned, showCannedManager } from "./canned.js";
import { loadDraft, renderComposerState, resetComposer, setQuote } from "./composer.js";
import { renderLabelManager, renderThreadLabels } from "./labels.js";
import { setPane } from "./layout.js";
import { applyConversation, refreshConversation, renderList } from "./list.js";
import { closeContactForm, loadContact, loadGallery, renderSidePanel } from "./panel.js";
import { loadCsat } from "./csat.js";

/** Opens a conversation; `focus` puts the cursor in the composer (not when walking the list with j/k). */
export async function openConversation(id, push, { focus = true } = {}) {
  if (push && id !== state.currentId) history.pushState({ id }, "", conversationUrl(id) + filtersQuery(state));
  const switching = openThread(state, id);
  if (switching) {
    resetComposer();
    $("message-items").replaceChildren();
    $("thread-placeholder").hidden = true;
    $("thread").hidden = false;
    loadDraft(id);
    forgetCanned();
    closeContactForm();
  }
  setPane("thread");
  renderList();
  const seq = ++state.threadSeq;
  const [conv, page] = await Promise.all([
    api("GET", "conversations/" + id + "/"),
    api("GET", "conversations/" + id + "/messages/?order=desc&page_size=50"),
  ]);
  if (seq !== state.threadSeq) return; // a newer open (or a reconnect's refetch) supersedes this one
  if (!conv.ok) {
    if (conv.status === 404) toast("That conversation does not exist or is not in your inboxes.", "error");
    closeThread();
    return;
  }
  state.convs.delete(id); // the fresh detail replaces whatever the list had
  applyConversation(conv.data);
  if (page.ok) {
    for (const message of page.data.results) storeMessage(state, message);
    if (switching || !state.messagesNext) state.messagesNext = page.data.next;
  }
  // Until the thread has been shown once, it opens at its latest message, whichever load gets here first.
  renderThread(state.positioned ? "keep" : "bottom");
  state.positioned = true;
  document.body.dataset.threadReady = String(id);
  markRead(id);
  loadContact();
  loadCsat(id);
  if (switching) showCannedManager();
  loadGallery();
  if (switching && focus && window.matchMedia("(min-width: 761px)").matches) $("composer-text").focus();
}

export function closeThread() {
  state.currentId = null;
  $("thread").hidden = true;
  $("thread-placeholder").hidden = false;
  setPane("list");
  if (location.pathname !== config.home) history.replaceState({}, "", config.home + filtersQuery(state));
  renderList();
}

export async function loadEarlier() {
  if (!state.messagesNext) return;
  const id = state.currentId;
  const result = await api("GET", state.messagesNext);
  if (id !== state.currentId || !result.ok) return;
  for (const message of result.data.results) storeMessage(state, message);
  state.messagesNext = result.data.next;
  renderThread("top");
}

// Per conversation, so opening the next one does not cancel this one's receipt; a burst of inbound
// messages in the open thread makes one call.
const readTimers = new Map();
export function markRead(id) {
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

export function refreshMessage(id) {
  coalesce("msg:" + id, async () => {
    const result = await api("GET", "messages/" + id + "/");
    if (!result.ok || result.data.conversation_id !== state.currentId) return;
    const isNew = !state.messages.has(id);
    if (storeMessage(state, result.data)) renderThread(isNew ? "follow" : "keep");
  });
}

// Everything above the messages: header, actions, banner, composer state, side panel.
export function renderThreadChrome() {
  const conv = currentConv();
  if (!conv) return;
  fillAvatar($("thread-avatar"), conv.contact);
  $("thread-name").textContent = contactName(conv.contact);
  const sub = ["@" + conv.contact.tiktok_user_id, conv.inbox.name];
  sub.push(conv.assignee ? "Assigned to " + (conv.assignee.id === ME ? "you" : conv.assignee.name) : "Unassigned");
  if (conv.snoozed_until) sub.push("Snoozed until " + fullTime(conv.snoozed_until));
  $("thread-sub").textContent = sub.join(" · ");
  const status = $("thread-status");
  status.textContent = conv.status;
  status.className = "pill pill-" + conv.status;
  const mine = conv.assignee && conv.assignee.id === ME;
  $("assign-button").hidden = Boolean(mine);
  $("unassign-button").hidden = !conv.assignee;
  $("resolve-button").hidden = conv.status === "resolved";
  $("reopen-button").hidden = conv.status === "open";
  $("snooze-select").hidden = conv.status === "resolved";
  $("priority-select").value = conv.priority;
  renderReferralBanner(conv);
  renderSubjectBanner(conv);
  renderThreadLabels();
  renderComposerState();
  renderSidePanel();
  renderLabelManager();
}

// A comment conversation shows the video the comments are on (its id, a link to it on TikTok).
function renderSubjectBanner(conv) {
  const banner = $("subject-banner");
  const subject = conv.kind === "comment" ? conv.subject : null;
  if (!subject) {
    banner.hidden = true;
    return;
  }
  const parts = [el("strong", { text: "Comments on video" })];
  if (subject.caption) parts.push(el("span", { class: "banner-label subject-caption", dir: "auto", text: subject.caption }));
  else parts.push(el("span", { class: "banner-label mono", text: subject.id }));
  if (subject.url && isHttpUrl(subject.url)) {
    parts.push(el("a", { href: subject.url, target: "_blank", rel: "noopener noreferrer", text: "View on TikTok" }));
  }
  const cover = subject.cover_url && isHttpUrl(subject.cover_url)
    ? el("img", { class: "subject-cover", src: subject.cover_url, alt: "Video cover", loading: "lazy" })
    : el("span", { class: "banner-icon", "aria-hidden": "true", text: "💬" });
  banner.replaceChildren(cover, el("span", { class: "subject-text" }, ...parts));
  banner.hidden = false;
}

function renderReferralBanner(conv) {
  const banner = $("referral-banner");
  const referral = conv.referral;
  if (!referral) {
    banner.hidden = true;
    return;
  }
  const data = conv.referral_data || {};
  const parts = [el("strong", { text: referral.title })];
  if (referral.label) parts.push(el("span", { class: "banner-label", dir: "auto", text: referral.label }));
  if (data.prefilled_message) parts.push(el("span", { class: "muted", dir: "auto", text: "Prefilled: “" + data.prefilled_message + "”" }));
  const url = data.source_url || data.embed_url;
  if (url && isHttpUrl(url)) parts.push(el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "View" }));
  banner.replaceChildren(el("span", { class: "banner-icon", "aria-hidden": "true", text: referral.source === "ad" ? "📣" : "🔗" }), ...parts);
  banner.dataset.source = referral.source;
  banner.hidden = false;
}

const ICON_STROKE = { fill: "none", stroke: "currentColor", "stroke-width": "1.8", "stroke-linecap": "round", "stroke-linejoin": "round" };
const ICONS = {
  queued: () =>
    svg("0 0 16 16", [
      ["circle", { cx: "8", cy: "8", r: "6.2", fill: "none", stroke: "currentColor", "stroke-width": "1.6" }],
      ["path", { d: "M8 4.6V8l2.4 1.6", fill: "none", stroke: "currentColor", "stroke-width": "1.6", "stroke-linecap": "round" }],
    ]),
  accepted: () => svg("0 0 16 16", [["path", { d: "M2.5 8.6l3.3 3.2 7.4-7.6", ...ICON_STROKE }]]),
  double: () =>
    svg("0 0 22 16", [["path", { d: "M1.5 8.6l3.3 3.2 7.4-7.6", ...ICON_STROKE }], ["path", { d: "M9.6 11.2l.6.6 7.4-7.6", ...ICON_STROKE }]], "icon icon-wide"),
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
    lines.push("Error: " + [error.name, error.description].filter(Boolean).join(" — ") + (error.permanent ? " (permanent)" : ""));
  }
  if (message.attempt > 1) lines.push("Attempt " + message.attempt);
  return lines.join("\n");
}

function ticks(message) {
  const status = message.status || "queued";
  const icon = status === "queued" ? ICONS.queued() : status === "accepted" ? ICONS.accepted() : status === "failed" ? ICONS.failed() : ICONS.double();
  return el("span", { class: "ticks ticks-" + status, dataset: { status }, title: statusTitle(message), tabindex: "0", "aria-label": STATUS_LABELS[status] }, icon);
}

function keepAtBottom() {
  if (state.stickToBottom) $("messages").scrollTop = $("messages").scrollHeight;
}

function messageBody(message) {
  const body = el("div", { class: "msg-body" });
  switch (message.type) {
    case "image": {
      if (message.media_url && isHttpUrl(message.media_url)) {
        const link = el("a", { href: message.media_url, target: "_blank", rel: "noopener noreferrer", class: "msg-image-link" });
        const image = el("img", { src: message.media_url, alt: "Image from " + (message.direction === "in" ? "the customer" : "you"), class: "msg-image" });
        image.addEventListener("error", () => link.replaceChildren(el("span", { class: "image-missing", text: "📷 Image (preview unavailable) — open" })));
        image.addEventListener("load", keepAtBottom); // a late image must not push the latest message out of view
        link.append(image);
        body.append(link);
      } else body.append(el("span", { class: "image-missing", text: "📷 Image" }));
      if (message.text) body.append(el("div", { class: "msg-text", dir: "auto", text: message.text }));
      break;
    }
    case "share_post": {
      const url = message.share_post_embed_url;
      const card = el(
        "div",
        { class: "post-card" },
        el("div", { class: "post-card-head" }, el("span", { class: "post-icon", "aria-hidden": "true", text: "▶" }), el("strong", { text: message.direction === "in" ? "Shared a TikTok post" : "You shared a TikTok post" }))
      );
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
      if (message.text) card.append(el("div", { class: "msg-text", dir: "auto", text: message.text }));
      body.append(card);
      break;
    }
    case "unsupported":
      body.append(el("em", { class: "muted", text: "This message type cannot be shown here — see it in TikTok." }));
      break;
    default:
      body.append(el("div", { class: "msg-text", dir: "auto", text: message.text || "" }));
  }
  return body;
}

function renderNote(message) {
  const author = message.author ? (message.author.id === ME ? "You" : message.author.name) : "Someone";
  return el(
    "div",
    { class: "msg msg-note", dataset: { messageId: String(message.id), version: String(message.version) } },
    el(
      "div",
      { class: "bubble note-bubble" },
      el("div", { class: "note-head" }, el("span", { class: "note-tag", text: "Private note" }), el("span", { class: "msg-author", text: author })),
      el("div", { class: "msg-text", dir: "auto", text: message.text }),
      el("div", { class: "msg-footer" }, el("time", { class: "msg-time", text: clockTime(message.sent_at), title: fullTime(message.sent_at) }))
    )
  );
}

function renderMessage(message, reactions) {
  const out = message.direction === "out";
  const bubble = el("div", { class: "bubble" });
  if (message.quoted_message_id || message.quoted_provider_message_id) {
    const quoted = state.messages.get(message.quoted_message_id);
    const quote = el("button", { type: "button", class: "quote", title: "Go to the quoted message" }, el("span", { class: "quote-bar", "aria-hidden": "true" }), el("span", { dir: "auto", text: snippet(quoted) }));
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
  if (message.other_author) bubble.append(el("div", { class: "msg-other-author", dir: "auto", text: "@" + message.other_author + " replied publicly" }));
  bubble.append(messageBody(message));
  const footer = el("div", { class: "msg-footer" });
  const moderation = commentModeration(message);
  if (moderation.badge) footer.append(el("span", { class: "public-badge public-" + message.public_state, text: moderation.badge, title: moderation.badge + " on TikTok" }));
  if (moderation.working) footer.append(el("span", { class: "public-badge comment-action-pending", text: moderation.working }));
  if (out && message.author) footer.append(el("span", { class: "msg-author", text: message.author.id === ME ? "You" : message.author.name }));
  if (out && message.sent_outside_inbox) footer.append(el("span", { class: "msg-author msg-outside", text: "Sent from the TikTok app", title: "Sent by the business outside this inbox" }));
  footer.append(el("time", { class: "msg-time", text: clockTime(message.sent_at), title: fullTime(message.sent_at) }));
  if (out) footer.append(ticks(message));
  bubble.append(footer);
  const row = el(
    "div",
    {
      class: "msg msg-" + (out ? "out" : "in") + " msg-type-" + message.type + (message.status === "failed" ? " msg-failed" : "") + (message.public_state && message.public_state !== "visible" ? " msg-" + message.public_state : ""),
      dataset: { messageId: String(message.id), status: message.status || "", version: String(message.version), publicState: message.public_state || "" },
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
  const actions = [];
  if (message.can_quote) {
    const reply = el("button", { type: "button", class: "link-button quote-button", text: "Reply", title: "Quote this message in your reply" });
    reply.addEventListener("click", () => setQuote(message));
    actions.push(reply);
  }
  // Public comments: the server says what may be done now (hide, unhide, delete); nothing while one is under way.
  for (const action of moderation.actions) {
    const button = el("button", { type: "button", class: "link-button comment-action", dataset: { action: action.name }, text: action.label });
    button.addEventListener("click", () => commentAction(message, action.name, button));
    actions.push(button);
  }
  if (actions.length) row.append(el("div", { class: "msg-actions" }, ...actions));
  if (moderation.failure) row.append(el("div", { class: "failure action-failure" }, el("span", { class: "failure-text", text: moderation.failure })));
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

const ACTION_CONFIRM = {
  hide: "Hide this comment from the public on TikTok? The commenter and their friends still see it.",
  delete: "Delete this reply on TikTok? This cannot be undone.",
};

async function commentAction(message, action, button) {
  if (ACTION_CONFIRM[action] && !window.confirm(ACTION_CONFIRM[action])) return;
  button.disabled = true;
  const result = await api("POST", "messages/" + message.id + "/" + action + "/");
  if (!result.ok) {
    apiError(result, "TikTok could not be asked to " + action + " it.");
    button.disabled = false;
    return;
  }
  if (result.data.conversation_id === state.currentId && storeMessage(state, result.data)) renderThread("keep");
}

async function retryMessage(id, button) {
  button.disabled = true;
  const result = await api("POST", "messages/" + id + "/retry/");
  if (!result.ok) {
    apiError(result, "The message could not be retried.");
    button.disabled = false;
    return;
  }
  if (result.data.conversation_id === state.currentId && storeMessage(state, result.data)) renderThread("keep");
  refreshConversation(result.data.conversation_id);
}

// Re-renders the thread from state. Unchanged messages keep their node (images and embeds stay put).
export function renderThread(scroll) {
  const box = $("messages");
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const previousHeight = box.scrollHeight;
  const all = sortedMessages(state);
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
      const referral = currentConv() && currentConv().referral;
      const how = referral ? referral.opened_how : "from a referral";
      nodes.push(el("div", { class: "system-line", dir: "auto", dataset: { messageId: String(message.id) } }, "Customer opened the chat " + how + (message.text ? ": “" + message.text + "”" : "")));
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
    const node = message.direction === "note" ? renderNote(message) : renderMessage(message, mine);
    node.dataset.signature = signature;
    nodes.push(node);
  }
  items.replaceChildren(...nodes);
  $("load-earlier").hidden = !state.messagesNext;
  renderComposerState();
  if (scroll === "bottom" || (scroll === "follow" && nearBottom)) box.scrollTop = box.scrollHeight;
  else if (scroll === "top") box.scrollTop = box.scrollHeight - previousHeight;
  state.stickToBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

export function watchScroll() {
  $("messages").addEventListener("scroll", () => {
    const box = $("messages");
    state.stickToBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  });
}
