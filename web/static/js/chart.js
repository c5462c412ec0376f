// TradingChart: fill prices over time with leader and follower fills marked
// (TradingView lightweight-charts, vendored under /static/vendor; no network needed).
import { el } from "./dom.js";

export class TradingChart {
  constructor(container) {
    this.fills = [];
    this.box = el("div", { id: "chart" });
    container.append(el("h2", {}, "Fills: leader ▲▼ and followers ●"), this.box);
    // eslint-disable-next-line no-undef
    const LWC = window.LightweightCharts;
    this.chart = LWC.createChart(this.box, {
      autoSize: true,
      layout: { background: { color: "#161d27" }, textColor: "#8b98a9" },
      grid: { vertLines: { color: "#222c39" }, horzLines: { color: "#222c39" } },
      timeScale: { timeVisible: true, secondsVisible: true },
      rightPriceScale: { borderColor: "#2a3442" },
    });
    this.series = this.chart.addSeries(LWC.LineSeries, { color: "#4c8dff", lineWidth: 2 });
    this.markers = LWC.createSeriesMarkers(this.series, []);
    this.dirty = false;
    this.shownPoints = 0;
    this.timer = setInterval(() => this.flush(), 500);
  }

  add(row) {
    if (!(row.kind === "fill" || row.kind === "partial_fill") || row.price === null || row.price === undefined) return;
    this.fills.push({ t: Math.floor(Date.parse(row.occurred_at) / 1000), price: Number(row.price), leader: row.is_leader, side: row.side });
    if (this.fills.length > 20000) this.fills.splice(0, 5000);
    this.dirty = true;
  }

  flush() {
    if (!this.dirty) return;
    this.dirty = false;
    const bySecond = new Map();
    for (const f of this.fills) {
      const slot = bySecond.get(f.t) || { price: f.price, leader: [], follower: { buy: 0, sell: 0 } };
      if (f.leader) { slot.price = f.price; slot.leader.push(f.side); } else { slot.follower[f.side] += 1; if (!slot.leader.length) slot.price = f.price; }
      bySecond.set(f.t, slot);
    }
    const times = [...bySecond.keys()].sort((a, b) => a - b);
    this.series.setData(times.map((t) => ({ time: t, value: bySecond.get(t).price })));
    // A run of a few seconds has a few points: spread them over the chart's width instead of
    // leaving them at the default bar spacing, squeezed against the right edge.
    if (times.length !== this.shownPoints) { this.chart.timeScale().fitContent(); this.shownPoints = times.length; }
    const marks = [];
    for (const t of times) {
      const slot = bySecond.get(t);
      for (const side of slot.leader) {
        marks.push({ time: t, position: side === "buy" ? "belowBar" : "aboveBar", shape: side === "buy" ? "arrowUp" : "arrowDown", color: "#f5a524", text: "L" });
      }
      for (const side of ["buy", "sell"]) {
        if (slot.follower[side]) marks.push({ time: t, position: side === "buy" ? "belowBar" : "aboveBar", shape: "circle", color: side === "buy" ? "#2fbf71" : "#e5484d", text: `${slot.follower[side]}` });
      }
    }
    this.markers.setMarkers(marks);
  }

  destroy() { clearInterval(this.timer); this.chart.remove(); }
}
