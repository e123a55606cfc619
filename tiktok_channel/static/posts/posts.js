// The Posts page: the TikTok accounts (followers chart, sync state, "Sync now") and their posts (figures, growth,
// a per-post chart on demand). The data comes from /api/v1/videos/; live hints (content.changed) make it refetch.

import { coalesce, createApi } from "../inbox/js/api.js";
import { el } from "../inbox/js/dom.js";
import { connectLive } from "../inbox/js/live.js";
import { cellText, drawChart, legend } from "../inbox/js/report-charts.js";
import { VIDEO_FIGURES, ago, compact, followersChart, growthText, signed, videoChart } from "./format.js";

const config = JSON.parse(document.getElementById("posts-config").textContent);
const api = createApi({ base: config.api, loginUrl: config.login_url });
const $ = (id) => document.getElementById(id);
const filter = $("filter-account");
const openCharts = new Set(); // posts whose chart is open: kept open across refetches
let version = 0;

function showError(message) {
  $("posts-error").textContent = message || "";
  $("posts-error").hidden = !message;
}

function table(chart, id) {
  const head = el("tr", {}, ...chart.columns.map((c) => el("th", { scope: "col", text: c.label })));
  const rows = chart.rows.map((row) => el("tr", {}, ...chart.columns.map((c) => el("td", { class: c.key === "day" ? null : "num", text: cellText(row[c.key]) }))));
  return el("div", { class: "table-wrap" }, el("table", { class: "report-table", id }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function chartBlock(chart, id) {
  if (!chart.rows.length) return el("p", { class: "posts-empty small", text: "No daily snapshot yet: the first sync takes one." });
  return el("div", {}, el("figure", { class: "report-figure" }, drawChart(chart), legend(chart)), table(chart, id));
}

async function syncNow(account, button) {
  button.disabled = true;
  button.textContent = "Sync requested…";
  const answer = await api("POST", `accounts/${account.id}/sync/`);
  if (!answer.ok) {
    button.disabled = false;
    button.textContent = "Sync now";
    showError(answer.data.message || "The sync could not be started.");
  }
}

function accountCard(account) {
  const growth = account.growth || {};
  const syncing = account.sync_requested_at && (!account.synced_at || account.sync_requested_at > account.synced_at) && !account.sync_error;
  const button = el("button", { type: "button", class: "btn btn-small sync-button", text: syncing ? "Sync requested…" : "Sync now", disabled: account.state !== "connected" || syncing });
  button.addEventListener("click", () => syncNow(account, button));
  return el(
    "article",
    { class: "report-card account-card", id: `account-${account.id}`, dataset: { state: account.state, syncedAt: account.synced_at || "" } },
    el("header", { class: "report-card-head" }, el("h2", { text: `${account.name}${account.username ? " (@" + account.username + ")" : ""}` }), button),
    account.state === "connected"
      ? null
      : el("p", { class: "account-alert", role: "alert" }, `This account must be reconnected (${account.state.replace(/_/g, " ")}): nothing syncs until then. `, account.reconnect_url ? el("a", { href: account.reconnect_url, text: "Reconnect" }) : null),
    el(
      "ul",
      { class: "account-figures" },
      el("li", {}, el("span", { class: "muted", text: "Followers " }), el("strong", { class: "followers", text: compact(account.followers) })),
      el("li", { class: "muted", text: `${signed(growth.day && growth.day.followers)} since yesterday · ${signed(growth.week && growth.week.followers)} in 7 days` }),
      el("li", {}, el("span", { class: "muted", text: "Posts " }), el("strong", { text: compact(account.videos_count) })),
      el("li", {}, el("span", { class: "muted", text: "Likes " }), el("strong", { text: compact(account.total_likes) })),
    ),
    el(
      "p",
      { class: "sync-line" },
      el("span", { class: "synced-at", text: `Synced ${ago(account.synced_at)} · inbox ${account.inbox}` }),
      account.sync_error ? el("span", { class: "sync-error", text: account.sync_error + (account.next_try_at ? ` (next try ${new Date(account.next_try_at).toLocaleTimeString()})` : "") }) : null,
    ),
    chartBlock(followersChart(account), `followers-table-${account.id}`),
  );
}

function cover(video) {
  const box = el("div", { class: "video-cover", "aria-hidden": "true", text: "▶" });
  if (video.cover_url) {
    const img = el("img", { class: "video-cover", src: video.cover_url, alt: "", loading: "lazy", referrerpolicy: "no-referrer" });
    img.addEventListener("error", () => img.replaceWith(box)); // TikTok's cover URLs expire after hours
    return img;
  }
  return box;
}

async function toggleChart(video, holder, button) {
  if (openCharts.has(video.id)) {
    openCharts.delete(video.id);
    holder.replaceChildren();
    button.textContent = "Chart";
    return;
  }
  openCharts.add(video.id);
  button.textContent = "Hide chart";
  await fillChart(video.id, holder);
}

async function fillChart(id, holder) {
  const answer = await api("GET", `${id}/`);
  if (!answer.ok) return holder.replaceChildren(el("p", { class: "sync-error", text: answer.data.message || "The chart could not be loaded." }));
  holder.replaceChildren(chartBlock(videoChart(answer.data), `video-table-${id}`));
}

function videoCard(video) {
  const holder = el("div", { class: "video-chart" });
  const button = el("button", { type: "button", class: "btn btn-small chart-button", text: openCharts.has(video.id) ? "Hide chart" : "Chart", "aria-expanded": String(openCharts.has(video.id)) });
  button.addEventListener("click", () => toggleChart(video, holder, button).then(() => button.setAttribute("aria-expanded", String(openCharts.has(video.id)))));
  if (openCharts.has(video.id)) fillChart(video.id, holder);
  const posted = video.posted_at ? new Date(video.posted_at).toLocaleString() : "";
  const week = video.growth && video.growth.week;
  return el(
    "article",
    { class: "video-card", id: `video-${video.video_id}`, dataset: { state: video.state, videoId: video.video_id } },
    el(
      "div",
      { class: "video-top" },
      cover(video),
      el(
        "div",
        { class: "video-text" },
        el("p", { class: "video-caption", text: video.caption || "(no caption)" }),
        el("span", { class: "video-meta" }, video.state === "removed" ? el("span", { class: "chip-removed", text: "Removed" }) : null, ` ${posted}`),
        video.share_url ? el("a", { href: video.share_url, target: "_blank", rel: "noopener noreferrer", text: "Open on TikTok" }) : null,
      ),
    ),
    el(
      "ul",
      { class: "video-figures" },
      ...VIDEO_FIGURES.map((f) => el("li", { title: growthText(video.growth, f.key), dataset: { figure: f.key } }, el("strong", { text: compact(video[f.key]) }), el("span", { text: f.label }), el("span", { class: "growth", text: video.growth && video.growth.day ? signed(video.growth.day[f.key]) : "" }))),
    ),
    el("p", { class: "video-meta growth-line", text: week ? `7 days: ${VIDEO_FIGURES.map((f) => `${signed(week[f.key])} ${f.label.toLowerCase()}`).join(", ")}` : growthText(video.growth, "views") + " (views)" }),
    el("div", {}, button),
    holder,
  );
}

async function load() {
  const query = filter.value ? `?connection=${filter.value}` : "";
  const [accounts, videos] = await Promise.all([api("GET", "accounts/"), api("GET", query)]);
  const failed = [accounts, videos].find((answer) => !answer.ok);
  if (failed) return showError(failed.data.message || "The posts could not be loaded.");
  showError("");
  const chosen = filter.value;
  filter.replaceChildren(el("option", { value: "", text: "All accounts" }), ...accounts.data.map((a) => el("option", { value: a.id, text: a.name })));
  filter.value = chosen;
  $("accounts").replaceChildren(...accounts.data.map(accountCard));
  if (!accounts.data.length) $("accounts").replaceChildren(el("p", { class: "posts-empty", text: "No TikTok account is connected directly yet (admin → TikTok apps → Connect)." }));
  const list = $("videos");
  list.replaceChildren(...videos.data.map(videoCard));
  if (!videos.data.length) list.replaceChildren(el("p", { class: "posts-empty", text: "No posts yet: press Sync now." }));
  list.dataset.count = String(videos.data.length);
  list.dataset.state = "ready";
  document.body.dataset.loaded = String(++version);
}

const reload = () => coalesce("posts", load);
filter.addEventListener("change", reload);

connectLive({
  path: config.live,
  onHello: reload,
  onEvent: (event) => {
    if (event.type === "content.changed" && event.subject === "videos") reload();
  },
  onStatus: (state, text) => {
    const badge = $("live-status");
    badge.dataset.state = state;
    badge.textContent = state === "live" ? "Live" : state === "connecting" ? "Connecting…" : text || "Offline";
  },
  onRefused: () => {
    location.href = config.login_url + "?next=" + encodeURIComponent(location.pathname);
  },
});
reload();
