// PriceChart: the last N minutes of one symbol's market price (the quote's mid, else the last
// trade), from the dxLink feed; one point per second (TradingView lightweight-charts, vendored).
import { el } from "./dom.js";

export const MINUTES = 15;

export class PriceChart {
  constructor(container, minutes = MINUTES) {
    this.minutes = minutes;
    this.series = new Map(); // symbol → [{time, value}], one point per second, oldest first
    this.symbol = null;
    this.picker = el("select", { id: "price-symbol", onchange: () => this.show(this.picker.value) });
    this.label = el("span", { id: "price-last", class: "muted" }, "no prices yet");
    this.feed = el("span", { id: "price-feed", class: "muted" });
    this.box = el("div", { id: "price-chart", class: "price-chart", dataset: { points: "0" } });
    container.append(
      el("div", { class: "toolbar" }, el("h2", {}, `Market price, last ${minutes} min`), el("span", { class: "spacer" }),
        this.feed, this.label, this.picker),
      this.box);
    // eslint-disable-next-line no-undef
    const LWC = window.LightweightCharts;
    this.chart = LWC.createChart(this.box, {
      autoSize: true,
      layout: { background: { color: "#161d27" }, textColor: "#8b98a9" },
      grid: { vertLines: { color: "#222c39" }, horzLines: { color: "#222c39" } },
      timeScale: { timeVisible: true, secondsVisible: true },
      rightPriceScale: { borderColor: "#2a3442" },
    });
    this.line = this.chart.addSeries(LWC.LineSeries, { color: "#2fbf71", lineWidth: 2 });
  }

  // The server's history: {symbol: [{t, price, ...}]}.
  load(history) {
    this.series = new Map();
    for (const [symbol, rows] of Object.entries(history)) for (const row of rows) this.add(row, false);
    this.refreshPicker();
    this.show(this.symbol && this.series.has(this.symbol) ? this.symbol : this.picker.value);
  }

  // Pushed quotes: append (or replace this second's point) and draw the selected symbol's.
  push(quotes) {
    let added = false;
    for (const row of quotes) {
      if (!this.series.has(row.symbol)) added = true;
      const point = this.add(row, true);
      if (point && row.symbol === this.symbol) { this.line.update(point); this.describe(row); }
    }
    if (added) { this.refreshPicker(); if (!this.symbol) this.show(this.picker.value); }
  }

  add(row, trim) {
    if (row.price === null || row.price === undefined) return null;
    const point = { time: Math.floor(row.t), value: Number(row.price) };
    const points = this.series.get(row.symbol) || [];
    if (points.length && points[points.length - 1].time === point.time) points[points.length - 1] = point;
    else if (!points.length || points[points.length - 1].time < point.time) points.push(point);
    else return null; // older than what is drawn: the chart only moves forward
    const oldest = point.time - this.minutes * 60;
    if (trim) while (points.length && points[0].time < oldest) points.shift();
    this.series.set(row.symbol, points);
    this.last = { ...(this.last || {}), [row.symbol]: row };
    if (row.symbol === this.symbol) this.box.dataset.points = String(points.length);
    return point;
  }

  refreshPicker() {
    const symbols = [...this.series.keys()].sort();
    const chosen = this.symbol;
    this.picker.replaceChildren(...symbols.map((s) => el("option", { value: s }, s)));
    if (chosen && symbols.includes(chosen)) this.picker.value = chosen;
  }

  show(symbol) {
    if (!symbol) return;
    this.symbol = symbol;
    this.picker.value = symbol;
    const points = this.series.get(symbol) || [];
    const oldest = (points.length ? points[points.length - 1].time : 0) - this.minutes * 60;
    while (points.length && points[0].time < oldest) points.shift();
    this.line.setData(points);
    this.chart.timeScale().fitContent();
    this.box.dataset.symbol = symbol;
    this.box.dataset.points = String(points.length);
    if (this.last && this.last[symbol]) this.describe(this.last[symbol]);
  }

  describe(row) {
    const parts = [`${row.symbol} ${row.price}`];
    if (row.bid !== null && row.ask !== null) parts.push(`bid ${row.bid} / ask ${row.ask}`);
    if (row.last !== null) parts.push(`last ${row.last}`);
    this.label.textContent = parts.join(" · ");
    this.box.dataset.last = row.price;
  }

  // The price feeds' health as the workers report it ({"market-data@<app id>": {connection, last_error}}).
  feeds(feeds) {
    const states = Object.values(feeds || {});
    const down = states.filter((f) => f.connection !== "connected");
    const problem = states.find((f) => f.last_error);
    this.feed.className = down.length ? "neg" : "muted";
    this.feed.textContent = !states.length ? "" : down.length ? `feed ${down[0].connection}` : "feed connected";
    this.feed.title = problem ? problem.last_error : "";
  }

  destroy() { this.chart.remove(); }
}
