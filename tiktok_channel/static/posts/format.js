// The Posts page's pure helpers (no DOM): numbers, growth, and the chart shapes report-charts.js draws.

/** 12345 → "12.3K"; exact below 10 000. */
export function compact(value) {
  if (value === null || value === undefined) return "–";
  const n = Number(value);
  if (Math.abs(n) < 10000) return String(n);
  if (Math.abs(n) < 1e6) return (n / 1000).toFixed(n < 1e5 ? 1 : 0) + "K";
  return (n / 1e6).toFixed(1) + "M";
}

/** A change as "+12" / "−3" / "±0"; "–" when unknown. */
export function signed(value) {
  if (value === null || value === undefined) return "–";
  if (value > 0) return "+" + compact(value);
  if (value < 0) return "−" + compact(-value);
  return "±0";
}

/** The growth line under a figure: "+12 today · +80 in 7 d" (each part only when known). */
export function growthText(growth, key) {
  const parts = [];
  if (growth && growth.day) parts.push(`${signed(growth.day[key])} since ${growth.day.since}`);
  if (growth && growth.week) parts.push(`${signed(growth.week[key])} since ${growth.week.since}`);
  return parts.join(" · ") || "no earlier snapshot yet";
}

export const VIDEO_FIGURES = [
  { key: "views", label: "Views" },
  { key: "likes", label: "Likes" },
  { key: "comments", label: "Comments" },
  { key: "shares", label: "Shares" },
];

/** The followers chart of an account, in report-charts.js's shape. */
export function followersChart(account) {
  return {
    kind: "line",
    title: `Followers of ${account.name}`,
    x: "day",
    series: ["followers"],
    columns: [
      { key: "day", label: "Day" },
      { key: "followers", label: "Followers" },
      { key: "total_likes", label: "Total likes" },
      { key: "videos_count", label: "Posts" },
    ],
    rows: account.series,
  };
}

/** One post's figures per day. */
export function videoChart(video) {
  return {
    kind: "line",
    title: `Figures of post ${video.video_id}`,
    x: "day",
    series: VIDEO_FIGURES.map((f) => f.key),
    columns: [{ key: "day", label: "Day" }, ...VIDEO_FIGURES],
    rows: video.series,
  };
}

/** "3 min ago"-style age of an ISO time, relative to `now` (ms). */
export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}
