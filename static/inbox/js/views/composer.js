// The composer: reply or private note, quote, image, shared post, counter, drafts, the lock reason.
import { newIdempotencyKey } from "../api.js";
import { actions, api, config, currentConv, state } from "../ctx.js";
import { $, apiError, toast } from "../dom.js";
import { duration, fullTime, snippet, windowLeft } from "../format.js";
import { draftKey, lockReason, outgoingReplies, replyMaxChars, storeMessage, textCounter } from "../store.js";

const PLACEHOLDERS = {
  reply: "Write a reply… (Enter sends, Shift+Enter for a new line, / for canned responses)",
  note: "Write a private note for your team… (@username notifies them)",
};

function maxChars() {
  if (state.mode === "note") return config.limits.note_text_max_chars;
  return replyMaxChars(currentConv(), config.limits.reply_text_max_chars);
}

export function setMode(mode) {
  state.mode = mode;
  if (mode === "note") {
    clearQuote();
    clearAttachment();
    closeShare();
  }
  renderComposerState();
  $("composer-text").focus();
}

export function renderComposerState() {
  const conv = currentConv();
  // Until the conversation has loaded there is nothing to send to: a click would be dropped silently.
  $("send-button").disabled = !conv;
  if (!conv) return;
  const note = state.mode === "note";
  const reason = lockReason(conv, state.mode, Date.now());
  const lock = $("composer-lock");
  lock.textContent = reason;
  lock.hidden = !reason;
  const composer = $("composer");
  composer.classList.toggle("locked", Boolean(reason));
  composer.classList.toggle("note-mode", note);
  composer.dataset.mode = state.mode;
  for (const button of document.querySelectorAll(".mode-button")) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === state.mode));
  }
  const text = $("composer-text");
  text.placeholder = PLACEHOLDERS[state.mode];
  text.setAttribute("aria-label", note ? "Private note" : "Reply");
  text.disabled = Boolean(reason);
  $("image-input").disabled = Boolean(reason) || note || state.quote !== null;
  $("share-button").disabled = Boolean(reason) || note || state.quote !== null;
  $("share-post-id").disabled = Boolean(reason);
  // A comment reply is public text only (the server's limits say so; the buttons follow the conversation's kind).
  const comment = conv.kind === "comment";
  $("image-label").hidden = note || comment;
  $("share-button").hidden = note || comment;
  const counter = textCounter(text.value, maxChars());
  const counterNode = $("char-counter");
  counterNode.textContent = counter.label;
  counterNode.dataset.state = counter.over ? "over" : counter.warn ? "warn" : "ok";
  counterNode.hidden = counter.count === 0;
  $("send-button").disabled = Boolean(reason) || counter.over || state.sending;
  $("send-button").textContent = note ? "Add note" : "Send";

  const left = windowLeft(conv);
  const countdown = $("window-countdown");
  if (comment) {
    countdown.textContent = "Public reply to the comment · no reply window";
    countdown.dataset.state = "none";
  } else if (left === null) {
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
  $("replies-left").textContent = left > 0 ? conv.replies_left + " of " + config.limits.reply_quota_per_window + " replies left" : "";
  for (const button of document.querySelectorAll(".retry-button")) {
    const replyLock = lockReason(conv, "reply", Date.now());
    button.disabled = Boolean(replyLock);
    button.title = replyLock || "Send it again";
  }
}

export function setQuote(message) {
  if (state.mode === "note") setMode("reply");
  if (state.image) {
    clearAttachment();
    toast("A reply that quotes is text only: the image was removed.");
  }
  closeShare();
  state.quote = message.id;
  $("quote-text").textContent = snippet(message);
  $("quote-chip").hidden = false;
  renderComposerState();
  $("composer-text").focus();
}

export function clearQuote() {
  state.quote = null;
  $("quote-chip").hidden = true;
  renderComposerState();
}

export function clearAttachment() {
  if (state.image && state.image.url) URL.revokeObjectURL(state.image.url);
  state.image = null;
  $("image-input").value = "";
  $("attachment-chip").hidden = true;
}

export function closeShare() {
  state.shareMode = false;
  $("share-post-id").value = "";
  $("share-row").hidden = true;
}

export function openShare() {
  state.shareMode = true;
  $("share-row").hidden = false;
  $("share-post-id").focus();
}

export function attachImage(file) {
  if (!file) return;
  if (!config.limits.image_types.includes(file.type)) {
    toast("Only JPG and PNG images can be sent.", "error");
    $("image-input").value = "";
    return;
  }
  if (file.size > config.limits.image_max_bytes) {
    toast("The image is larger than " + Math.round(config.limits.image_max_bytes / 1048576) + " MB.", "error");
    $("image-input").value = "";
    return;
  }
  clearAttachment();
  state.image = { file, url: URL.createObjectURL(file) };
  $("attachment-preview").src = state.image.url;
  $("attachment-name").textContent = file.name;
  $("attachment-chip").hidden = false;
}

export function resetComposer() {
  clearQuote();
  clearAttachment();
  closeShare();
  $("composer-text").value = "";
}

// Drafts: per conversation, in this browser, across reloads.
export function loadDraft(id) {
  let text = "";
  try {
    text = localStorage.getItem(draftKey(id)) || "";
  } catch (e) {
    text = "";
  }
  $("composer-text").value = text;
}

export function saveDraft() {
  if (!state.currentId) return;
  try {
    const text = $("composer-text").value;
    if (text) localStorage.setItem(draftKey(state.currentId), text);
    else localStorage.removeItem(draftKey(state.currentId));
  } catch (e) {
    /* no storage: no drafts */
  }
}

function asBody(reply) {
  if (reply.type !== "image") return reply;
  const form = new FormData();
  form.append("type", "image");
  form.append("image", reply.image);
  return form;
}

export async function send(event) {
  if (event) event.preventDefault();
  const id = state.currentId;
  const conv = currentConv();
  if (!conv || state.sending || lockReason(conv, state.mode, Date.now())) return;
  const text = $("composer-text").value;
  if (textCounter(text, maxChars()).over) {
    toast("The text is longer than " + maxChars() + " characters: shorten it to send.", "error");
    return;
  }
  state.sending = true;
  renderComposerState();
  try {
    if (state.mode === "note") {
      if (!text.trim()) return;
      const result = await api("POST", "conversations/" + id + "/notes/", { text });
      if (!result.ok) return apiError(result, "The note was not added.");
      $("composer-text").value = "";
      saveDraft();
      if (id === state.currentId && storeMessage(state, result.data)) actions.renderThread("bottom");
      return;
    }
    const outgoing = outgoingReplies({
      text,
      image: state.image && state.image.file,
      postId: state.shareMode ? $("share-post-id").value.trim() : "",
      quote: state.quote,
    });
    if (!outgoing.length) return;
    // One key per composed reply, kept until it is sent: pressing Send again (or Enter twice) repeats it.
    state.composeKey = state.composeKey || newIdempotencyKey();
    for (const reply of outgoing) {
      const result = await api("POST", "conversations/" + id + "/messages/", asBody(reply), { "Idempotency-Key": state.composeKey + ":" + reply.type });
      if (!result.ok) {
        apiError(result, "The reply was not sent.");
        actions.refreshConversation(id);
        return;
      }
      if (reply.type === "image") clearAttachment();
      else if (reply.type === "share_post") closeShare();
      else {
        $("composer-text").value = "";
        clearQuote();
        saveDraft();
      }
      if (id === state.currentId && storeMessage(state, result.data)) actions.renderThread("bottom");
    }
    state.composeKey = null;
    actions.refreshConversation(id);
  } finally {
    state.sending = false;
    renderComposerState();
  }
}

let lastTyping = 0;
export function typing() {
  saveDraft();
  renderComposerState();
  const conv = currentConv();
  if (!conv || state.mode === "note" || lockReason(conv, "reply", Date.now()) || !$("composer-text").value.trim()) return;
  if (Date.now() - lastTyping < 4000) return;
  lastTyping = Date.now();
  api("POST", "conversations/" + conv.id + "/typing/");
}
