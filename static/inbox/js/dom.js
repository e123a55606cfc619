// Small DOM helpers. Data goes into the page as text (textContent, attributes), never parsed as HTML.

import { contactName, hue, initials } from "./format.js";

export const $ = (id) => document.getElementById(id);

const AVATAR_COLORS = 8;
export function fillAvatar(node, contact) {
  const name = contactName(contact);
  node.textContent = initials(name);
  node.dataset.color = String(hue((contact && contact.tiktok_user_id) || name) % AVATAR_COLORS);
}

export function el(tag, attrs, ...children) {
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
export function svg(viewBox, paths, cls) {
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

export function isHttpUrl(value) {
  try {
    const url = new URL(value, location.href);
    return url.protocol === "https:" || url.protocol === "http:" || url.protocol === "blob:";
  } catch (e) {
    return false;
  }
}

export function isTikTokEmbed(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" && url.hostname === "www.tiktok.com";
  } catch (e) {
    return false;
  }
}

export function toast(text, kind) {
  const node = el("div", { class: "toast toast-" + (kind || "info"), role: "status", text });
  $("toasts").append(node);
  setTimeout(() => node.classList.add("toast-out"), 4500);
  setTimeout(() => node.remove(), 5000);
}

export function apiError(result, fallback) {
  toast((result.data && result.data.message) || fallback || "Something went wrong.", "error");
}

// The live events this page has handled, newest last (the last 200): what tests wait for instead of sleeping.
export function markProcessed(event) {
  const key = event.type + ":" + (event.type === "conversation.created" ? event.conversation_id : event.message_id || event.conversation_id);
  const processed = (window.__processed = window.__processed || []);
  processed.push(key);
  if (processed.length > 200) processed.shift();
  document.body.dataset.lastEvent = key;
}
