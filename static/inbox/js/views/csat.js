// The conversation's satisfaction (CSAT) in the details pane: the latest survey's rating, or why it was not sent.
import { api, state } from "../ctx.js";
import { $, el } from "../dom.js";
import { fullTime } from "../format.js";

export function csatSummary(survey) {
  if (!survey) return null;
  if (survey.rating) return "★".repeat(survey.rating) + "☆".repeat(5 - survey.rating) + " " + survey.rating + "/5";
  if (survey.outcome === "not_sent") return "Survey not sent: " + survey.detail;
  return "Survey sent, not rated yet";
}

export async function loadCsat(id = state.currentId) {
  if (!id) return;
  const result = await api("GET", "conversations/" + id + "/csat/");
  if (!result.ok || id !== state.currentId) return;
  const survey = result.data[0];
  const section = $("csat-section");
  section.hidden = !survey;
  if (!survey) return;
  const body = $("csat-body");
  body.replaceChildren(el("p", { id: "csat-rating", class: survey.rating ? "csat-rating" : "muted", text: csatSummary(survey) }));
  if (survey.comment) body.append(el("blockquote", { class: "csat-quote", dir: "auto", text: survey.comment }));
  if (survey.rated_at) body.append(el("p", { class: "muted small", text: "Rated " + fullTime(survey.rated_at) }));
}
