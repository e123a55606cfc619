// Pure formatting helpers: no DOM, no globals besides Intl; `now` is passed in so tests fix it.

const pad = (n) => String(n).padStart(2, "0");

export function parseTime(value) {
  return value ? new Date(value) : null;
}

export function shortAgo(value, now = Date.now()) {
  const at = parseTime(value);
  if (!at) return "";
  const seconds = Math.max(0, (now - at.getTime()) / 1000);
  if (seconds < 60) return "now";
  if (seconds < 3600) return Math.floor(seconds / 60) + "m";
  if (seconds < 86400) return Math.floor(seconds / 3600) + "h";
  if (seconds < 7 * 86400) return Math.floor(seconds / 86400) + "d";
  return at.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

export function clockTime(value) {
  const at = parseTime(value);
  return at ? at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) : "";
}

export function fullTime(value) {
  const at = parseTime(value);
  return at ? at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) : "";
}

export function dayLabel(date, now = Date.now()) {
  const today = new Date(now);
  const yesterday = new Date(now - 86400000);
  if (date.toDateString() === today.toDateString()) return "Today";
  if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
  return date.toLocaleDateString(undefined, { weekday: "short", month: "short", day: "numeric" });
}

export function duration(ms, withSeconds) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (withSeconds) return h + ":" + pad(m) + ":" + pad(s);
  if (h > 0) return h + "h " + pad(m) + "m";
  if (m > 0) return m + "m";
  return "<1m";
}

/** Milliseconds until the reply window closes (negative once closed), or null without a window. */
export function windowLeft(conv, now = Date.now()) {
  const closes = parseTime(conv.reply_window_closes_at);
  if (!closes) return null;
  return closes.getTime() - now;
}

export function contactName(contact) {
  return (contact && (contact.display_name || contact.tiktok_user_id)) || "TikTok user";
}

export function initials(name) {
  const parts = String(name).trim().split(/\s+/).filter(Boolean);
  const letters = parts.slice(0, 2).map((p) => Array.from(p)[0] || "");
  return (letters.join("") || "?").toUpperCase();
}

export function hue(seed) {
  let h = 0;
  for (const ch of String(seed)) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

const KINDS = {
  image: "📷 Photo",
  share_post: "▶ Shared a post",
  referral: "Came from a referral",
  unsupported: "Unsupported message",
};

export function previewText(last) {
  if (!last) return "No messages yet";
  const who = last.direction === "out" ? "You: " : last.direction === "note" ? "Note: " : "";
  const body =
    last.type === "text"
      ? last.text
      : last.type === "reaction"
        ? "Reacted " + (last.text || "")
        : last.text || KINDS[last.type] || last.type;
  return who + String(body).replace(/\s+/g, " ").trim();
}

export function snippet(message) {
  if (!message) return "Earlier message";
  if (message.type === "image") return "📷 Photo";
  if (message.type === "share_post") return "▶ Shared post";
  const text = (message.text || "").replace(/\s+/g, " ").trim();
  return text.length > 90 ? text.slice(0, 90) + "…" : text || message.type;
}
