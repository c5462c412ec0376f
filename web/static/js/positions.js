// PositionPanel: open positions per (account, symbol); flat ones hidden unless asked.
import { el, money, signClass } from "./dom.js";

export class PositionPanel {
  constructor(container) {
    this.rows = new Map();
    this.body = el("tbody");
    this.showFlat = el("input", { type: "checkbox", id: "show-flat", onchange: () => this.render() });
    container.append(
      el("div", { class: "toolbar" }, el("h2", {}, "Positions"), el("span", { class: "spacer" }),
        el("label", { class: "muted" }, el("span", {}, this.showFlat, " show flat"))),
      el("div", { class: "table-wrap log" }, el("table", { id: "positions" },
        el("thead", {}, el("tr", {}, el("th", {}, "Account"), el("th", {}, "Symbol"), el("th", { class: "num" }, "Net"),
          el("th", { class: "num" }, "Avg"), el("th", { class: "num" }, "Realised"))),
        this.body)));
  }

  snapshot(rows) { this.rows = new Map(rows.map((r) => [r.key, r])); this.render(); }
  update(row) { this.rows.set(row.key, row); this.render(); }

  render() {
    const rows = [...this.rows.values()]
      .filter((r) => this.showFlat.checked || r.net_quantity !== 0)
      .sort((a, b) => a.account_id.localeCompare(b.account_id) || a.symbol.localeCompare(b.symbol));
    this.body.replaceChildren(...rows.map((r) => el("tr", { dataset: { key: r.key, net: r.net_quantity } },
      el("td", {}, r.account_id), el("td", {}, r.symbol),
      el("td", { class: "num " + signClass(r.net_quantity) }, r.net_quantity),
      el("td", { class: "num" }, r.average_price == null ? "–" : Number(r.average_price).toFixed(2)),
      el("td", { class: "num " + signClass(r.realized_pnl) }, money(r.realized_pnl)))));
    if (!rows.length) this.body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "All flat.")));
  }
}
