// Trading page: AccountGrid, OrderLog (+ waterfall), PositionPanel and TradingChart, all live.
import { el } from "./dom.js";
import { AccountGrid } from "./grid.js";
import { LiveStreams } from "./live.js";
import { OrderLog } from "./orderlog.js";
import { PositionPanel } from "./positions.js";
import { TradingChart } from "./chart.js";

export function mount(root, { setLive }) {
  const gridBox = el("section", { class: "panel" });
  const logBox = el("section", { class: "panel" });
  const detail = el("section", { class: "panel", id: "copy-detail" }, el("h2", {}, "Copy waterfall"),
    el("p", { class: "muted" }, "Click a row of the order log."));
  const posBox = el("section", { class: "panel" });
  const chartBox = el("section", { class: "panel" });
  root.append(gridBox, el("div", { class: "grid2" }, el("div", {}, logBox, chartBox), el("div", {}, detail, posBox)));
  const grid = new AccountGrid(gridBox);
  const log = new OrderLog(logBox, detail);
  const positions = new PositionPanel(posBox);
  const chart = new TradingChart(chartBox);
  const live = new LiveStreams(["grid", "orders", "errors", "positions"], {
    status: setLive,
    snapshot(stream, rows) {
      if (stream === "grid") grid.snapshot(rows);
      else if (stream === "positions") positions.snapshot(rows);
      else {
        log.snapshot(stream, rows);
        if (stream === "orders") { chart.fills = []; rows.forEach((r) => chart.add(r)); }
      }
    },
    row(stream, row) {
      if (stream === "grid") grid.update(row);
      else if (stream === "positions") positions.update(row);
      else {
        log.add(stream, row);
        if (stream === "orders") chart.add(row);
      }
    },
  }).connect();
  return { unmount() { live.close(); chart.destroy(); } };
}
