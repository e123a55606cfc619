// The details pane: contact, attribution (labels from the server), conversation facts, conversions.
import { actions, api, currentConv, state } from "../ctx.js";
import { $, el, fillAvatar } from "../dom.js";
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
