// The Reports page's charts: plain SVG built from a chart's rows (no library: a few shapes, no CSP exceptions,
// nothing to keep up to date). The numbers are always in the table under each chart; the charts are for the eye.

const SVG = "http://www.w3.org/2000/svg";
export const COLORS = ["#fe2c55", "#0a9c98", "#161823", "#c77700"];

/** A table cell's text: the same as the CSV export's (inbox/reports/api.py `cell_text`). */
export function cellText(value, unit) {
  if (value === null || value === undefined) return "";
  if (unit === "min" || unit === "%") return Number(value).toFixed(1);
  if (unit === "avg") return Number(value).toFixed(2);
  return String(value);
}

/** A round axis maximum at or above `value` (1, 2, 5 × 10^n). */
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** The query string of a filter state: only what is set, in a fixed order. */
export function queryOf(filters) {
  const params = new URLSearchParams();
  for (const key of ["since", "until", "inbox", "team", "agent"]) if (filters[key]) params.set(key, filters[key]);
  return params.toString();
}

/** Line points of one series: null values break the line (a day without samples). */
export function linePath(values, { width, height, max, left = 0, top = 0 }) {
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  let path = "";
  let drawing = false;
  values.forEach((value, index) => {
    if (value === null || value === undefined) {
      drawing = false;
      return;
    }
    const x = left + (values.length > 1 ? index * step : width / 2);
    const y = top + height - (height * value) / max;
    path += `${drawing ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
    drawing = true;
  });
  return path;
}

function node(tag, attrs = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function svg(width, height, label) {
  return node("svg", { viewBox: `0 0 ${width} ${height}`, class: "report-svg", role: "img", "aria-label": label });
}

function labelOf(chart, key) {
  const column = chart.columns.find((c) => c.key === key);
  return column ? column.label : key;
}

export function legend(chart) {
  const list = document.createElement("ul");
  list.className = "report-legend";
  if (chart.kind === "heatmap") return list;
  chart.series.forEach((key, index) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = COLORS[index % COLORS.length];
    item.append(swatch, labelOf(chart, key));
    list.append(item);
  });
  return list;
}

export function lineChart(chart) {
  const [width, height, left, top, bottom] = [640, 220, 44, 10, 26];
  const plotWidth = width - left - 10;
  const plotHeight = height - top - bottom;
  const values = chart.series.map((key) => chart.rows.map((row) => row[key]));
  const max = niceMax(Math.max(0, ...values.flat().filter((v) => v !== null && v !== undefined)));
  const root = svg(width, height, chart.title);
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotHeight - plotHeight * fraction;
    root.append(node("line", { x1: left, x2: width - 10, y1: y, y2: y, class: "grid" }));
    root.append(node("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, String(+(max * fraction).toFixed(1))));
  }
  const rows = chart.rows;
  const picks = rows.length > 2 ? [0, Math.floor((rows.length - 1) / 2), rows.length - 1] : rows.map((_, i) => i);
  for (const index of picks) {
    const x = left + (rows.length > 1 ? (index * plotWidth) / (rows.length - 1) : plotWidth / 2);
    const anchor = index === 0 ? "start" : index === rows.length - 1 ? "end" : "middle";
    root.append(node("text", { x, y: height - 6, "text-anchor": anchor, class: "axis" }, String(rows[index][chart.x])));
  }
  values.forEach((series, index) => {
    const color = COLORS[index % COLORS.length];
    const d = linePath(series, { width: plotWidth, height: plotHeight, max, left, top });
    if (d) root.append(node("path", { d, class: "line", stroke: color }));
    series.forEach((value, i) => {
      if (value === null || value === undefined) return;
      const x = left + (rows.length > 1 ? (i * plotWidth) / (rows.length - 1) : plotWidth / 2);
      const dot = node("circle", { cx: x.toFixed(1), cy: (top + plotHeight - (plotHeight * value) / max).toFixed(1), r: 2.5, fill: color });
      dot.append(node("title", {}, `${rows[i][chart.x]}: ${value}`));
      root.append(dot);
    });
  });
  return root;
}

export function barChart(chart) {
  const rows = chart.rows.slice(0, 12);
  const barHeight = 10;
  const group = chart.series.length * barHeight + 12;
  const [width, labelWidth] = [640, 170];
  const height = Math.max(40, rows.length * group + 8);
  const max = niceMax(Math.max(0, ...rows.flatMap((row) => chart.series.map((key) => row[key] || 0))));
  const root = svg(width, height, chart.title);
  rows.forEach((row, rowIndex) => {
    const y = 4 + rowIndex * group;
    const label = String(row[chart.x] ?? "");
    root.append(node("text", { x: 0, y: y + group / 2, class: "axis label" }, label.length > 26 ? label.slice(0, 25) + "…" : label));
    chart.series.forEach((key, index) => {
      const value = row[key] || 0;
      const barWidth = ((width - labelWidth - 40) * value) / max;
      const top = y + index * barHeight;
      root.append(node("rect", { x: labelWidth, y: top, width: barWidth.toFixed(1), height: barHeight - 2, fill: COLORS[index % COLORS.length] }));
      root.append(node("text", { x: labelWidth + barWidth + 4, y: top + barHeight - 3, class: "axis" }, String(value)));
    });
  });
  if (!rows.length) root.append(node("text", { x: 0, y: 24, class: "axis" }, "No data in this range"));
  return root;
}

export function heatmapChart(chart) {
  const [cell, labelWidth, top] = [24, 40, 16];
  const width = labelWidth + 24 * cell;
  const height = top + chart.rows.length * cell;
  const max = Math.max(1, ...chart.rows.flatMap((row) => chart.series.map((key) => row[key] || 0)));
  const root = svg(width, height, chart.title);
  chart.series.forEach((key, hour) => {
    if (hour % 3 === 0) root.append(node("text", { x: labelWidth + hour * cell + cell / 2, y: 11, "text-anchor": "middle", class: "axis" }, key.slice(1)));
  });
  chart.rows.forEach((row, index) => {
    const y = top + index * cell;
    root.append(node("text", { x: 0, y: y + cell / 2 + 4, class: "axis" }, String(row[chart.x])));
    chart.series.forEach((key, hour) => {
      const value = row[key] || 0;
      const rect = node("rect", {
        x: labelWidth + hour * cell + 1,
        y: y + 1,
        width: cell - 2,
        height: cell - 2,
        rx: 3,
        class: "heat",
        "fill-opacity": value ? (0.15 + (0.85 * value) / max).toFixed(2) : 0.04,
      });
      rect.append(node("title", {}, `${row[chart.x]} ${key.slice(1)}:00 — ${value}`));
      root.append(rect);
    });
  });
  return root;
}

export function drawChart(chart) {
  if (chart.kind === "heatmap") return heatmapChart(chart);
  if (chart.kind === "bar") return barChart(chart);
  return lineChart(chart);
}
