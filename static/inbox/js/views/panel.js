// The details pane: contact, attribution (labels from the server), conversation facts, conversions.
import { actions, api, currentConv, state } from "../ctx.js";
import { $, apiError, el, fillAvatar, isHttpUrl } from "../dom.js";
import { contactName, fullTime } from "../format.js";

export async function loadContact() {
  const conv = currentConv();
  if (!conv) return;
  const result = await api("GET", "contacts/" + conv.contact.id + "/");
  if (!result.ok || conv.id !== state.currentId) return;
  state.contact = result.data;
  renderSidePanel();
}

function fact(list, label, value, mono) {
  if (value === null || value === undefined || value === "") return;
  list.append(el("dt", { text: label }), el("dd", { class: mono ? "mono" : null, dir: "auto", text: String(value) }));
}

export function renderSidePanel() {
  const conv = currentConv();
  if (!conv) return;
  const contact = state.contact && state.contact.id === conv.contact.id ? state.contact : null;
  fillAvatar($("contact-avatar"), conv.contact);
  $("contact-name").textContent = contactName(conv.contact);
  $("contact-id").textContent = "@" + conv.contact.tiktok_user_id;
  const facts = $("contact-facts");
  facts.replaceChildren();
  fact(facts, "TikTok user id", conv.contact.tiktok_user_id, true);
  const history = $("contact-history");
  history.replaceChildren();
  if (contact) {
    fact(facts, "Email", contact.email);
    fact(facts, "Phone", contact.phone);
    fact(facts, "Notes", contact.notes);
    for (const [key, value] of Object.entries(contact.attributes || {})) fact(facts, key, value);
    fact(facts, "Business account", contact.business_account_id, true);
    fact(facts, "First seen", fullTime(contact.first_seen_at));
    fact(facts, "Last seen", fullTime(contact.last_seen_at));
    for (const other of contact.conversations || []) {
      if (other.id === conv.id) continue;
      const link = el("button", { type: "button", class: "link-button history-link", text: other.inbox.name + " · " + other.status + " · " + fullTime(other.last_activity_at) });
      link.addEventListener("click", () => actions.openConversation(other.id, true));
      history.append(el("li", {}, link));
    }
  }
  $("history-section").hidden = history.children.length === 0;
  const attribution = $("attribution-facts");
  attribution.replaceChildren();
  for (const item of conv.referral_facts || []) fact(attribution, item.label, item.value, item.mono);
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

// Editing the contact: the form is filled from the last fetched contact and sends only what it shows.
function attributeRow(key, value) {
  return el(
    "div",
    { class: "attribute-row" },
    el("input", { class: "input attribute-key", value: key, placeholder: "name", "aria-label": "Attribute name", maxlength: "50" }),
    el("input", { class: "input attribute-value", value: value, placeholder: "value", "aria-label": "Attribute value", maxlength: "500" }),
    el("button", { type: "button", class: "link-button", text: "×", "aria-label": "Remove attribute", onclick: (event) => event.target.closest(".attribute-row").remove() })
  );
}

export function editContact() {
  const contact = state.contact;
  if (!contact) return;
  $("contact-display-name").value = contact.display_name || "";
  $("contact-email").value = contact.email || "";
  $("contact-phone").value = contact.phone || "";
  $("contact-notes").value = contact.notes || "";
  $("contact-attributes").replaceChildren(...Object.entries(contact.attributes || {}).map(([key, value]) => attributeRow(key, value)));
  $("contact-form").hidden = false;
  $("contact-edit").hidden = true;
  $("contact-display-name").focus();
}

export function addAttributeRow() {
  $("contact-attributes").append(attributeRow("", ""));
}

export function closeContactForm() {
  $("contact-form").hidden = true;
  $("contact-edit").hidden = false;
}

export async function saveContact(event) {
  event.preventDefault();
  if (!state.contact) return;
  const attributes = {};
  for (const row of $("contact-attributes").querySelectorAll(".attribute-row")) {
    const key = row.querySelector(".attribute-key").value.trim();
    if (key) attributes[key] = row.querySelector(".attribute-value").value;
  }
  const result = await api("PATCH", "contacts/" + state.contact.id + "/", {
    display_name: $("contact-display-name").value,
    email: $("contact-email").value,
    phone: $("contact-phone").value,
    notes: $("contact-notes").value,
    attributes,
  });
  if (!result.ok) return apiError(result, "The contact was not saved.");
  state.contact = result.data;
  closeContactForm();
  for (const conv of state.convs.values()) if (conv.contact.id === result.data.id) actions.refreshConversation(conv.id);
  renderSidePanel();
}

/** Another agent edited a contact: refetch it where it is shown. */
export function contactChanged(contactId) {
  if (state.contact && state.contact.id === contactId && $("contact-form").hidden) loadContact();
  for (const conv of state.convs.values()) if (conv.contact.id === contactId) actions.refreshConversation(conv.id);
}

// The conversation's images, newest first, in one place.
export async function loadGallery() {
  const id = state.currentId;
  const result = await api("GET", "conversations/" + id + "/messages/?type=image&order=desc&page_size=60");
  if (!result.ok || id !== state.currentId) return;
  const images = result.data.results.filter((message) => message.media_url && isHttpUrl(message.media_url));
  $("gallery").replaceChildren(
    ...images.map((message) =>
      el(
        "li",
        {},
        el(
          "a",
          { href: message.media_url, target: "_blank", rel: "noopener noreferrer", title: (message.direction === "in" ? "From the customer, " : "Sent, ") + fullTime(message.sent_at) },
          el("img", { src: message.media_url, alt: "Attachment", loading: "lazy", class: "gallery-image" })
        )
      )
    )
  );
  $("gallery-section").hidden = images.length === 0;
}
