// Reports: P&L by account and day, copies and latency, rejects with reasons, slippage; CSV export.
import { get } from "./api.js";
import { el, money, signClass } from "./dom.js";

const REPORTS = [
  { id: "pnl", title: "P&L by account and day", columns: ["day", "account_id", "realized_pnl"] },
  { id: "latency", title: "Copies and latency", columns: ["day", "account_id", "copies", "e2e_p50_ms", "e2e_p99_ms", "e2e_max_ms"] },
  { id: "rejects", title: "Rejects and refusals", columns: ["occurred_at", "source", "account_id", "code", "reason"] },
  { id: "slippage", title: "Slippage per account and copy group (ticks; positive = worse for the follower; empty = unknown)",
    columns: ["scope", "key", "copies", "leader_known", "leader_avg_ticks", "leader_worst_ticks", "leader_total_amount",
      "ref_known", "ref_avg_ticks", "ref_worst_ticks", "ref_total_amount"] },
];

export function mount(root) {
  const start = el("input", { type: "date", id: "report-start" });
  const end = el("input", { type: "date", id: "report-end" });
  const sections = REPORTS.map((r) => ({ ...r, body: el("tbody"), link: el("a", { class: "csv", download: `copytrader-${r.id}.csv` }, "CSV") }));
  root.append(el("div", { class: "toolbar panel" },
    el("label", {}, "From", start), el("label", {}, "Until (exclusive)", end),
    el("button", { class: "primary", onclick: () => load() }, "Show")));
  for (const s of sections) {
    root.append(el("section", { class: "panel", id: `report-${s.id}` },
      el("div", { class: "toolbar" }, el("h2", {}, s.title), el("span", { class: "spacer" }), s.link),
      el("div", { class: "table-wrap log" }, el("table", {}, el("thead", {}, el("tr", {}, s.columns.map((c) => el("th", {}, c)))), s.body))));
  }

  async function load() {
    const query = new URLSearchParams();
    if (start.value) query.set("start", start.value);
    if (end.value) query.set("end", end.value);
    for (const s of sections) {
      s.link.href = `/api/reports/${s.id}?${query}&format=csv`;
      const data = await get(`/api/reports/${s.id}?${query}`);
      s.body.replaceChildren(...data.rows.slice(-500).reverse().map((row) => el("tr", {}, s.columns.map((c) => {
        const v = row[c];
        if (c === "realized_pnl") return el("td", { class: "num " + signClass(v) }, money(v));
        return el("td", { class: typeof v === "number" ? "num" : "" }, v ?? "");
      }))));
      if (!data.rows.length) s.body.append(el("tr", {}, el("td", { colspan: s.columns.length, class: "muted" }, "Nothing in this range.")));
    }
  }
  load();
  return {};
}
