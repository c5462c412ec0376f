// OrderLog: executions and refusals, newest first; a click shows that copy's latency waterfall.
// Follower fills show their slippage against the leader's fill (ticks, positive = worse for the
// follower, "?" = unknown: no leader fill seen yet); copies placed as a protected limit by their
// price band carry a "band" badge.
import { el, ms, time } from "./dom.js";

const MAX_ROWS = 300;
const STAGES = ["occurred", "detected", "published", "fanned_out", "received", "sent", "acked", "filled"];

export class OrderLog {
  constructor(container, detail) {
    this.body = el("tbody");
    this.detail = detail;
    container.append(
      el("h2", {}, "Order log"),
      el("div", { class: "table-wrap log" }, el("table", { id: "order-log" },
        el("thead", {}, el("tr", {}, el("th", {}, "Time"), el("th", {}, "Account"), el("th", {}, "Event"),
          el("th", {}, "Side"), el("th", { class: "num" }, "Qty"), el("th", {}, "Symbol"),
          el("th", { class: "num hide-sm" }, "Price"),
          el("th", { class: "num", title: "Slippage vs the leader's fill, in ticks (positive = worse for the follower)" }, "Slip"),
          el("th", { class: "num" }, "Latency"))),
        this.body)));
  }

  snapshot(stream, rows) {
    for (const tr of [...this.body.children]) if (tr.dataset.stream === stream) tr.remove();
    const ordered = [...rows].sort((a, b) => String(a.occurred_at).localeCompare(String(b.occurred_at)));
    for (const row of ordered.slice(-MAX_ROWS)) this.add(stream, row);
  }

  add(stream, row) {
    const tr = stream === "orders" ? this.execution(row) : this.refusal(row);
    tr.dataset.stream = stream;
    tr.addEventListener("click", () => this.show(row));
    this.body.prepend(tr);
    while (this.body.children.length > MAX_ROWS) this.body.lastChild.remove();
  }

  execution(row) {
    const label = row.is_leader ? `leader ${row.kind}` : row.kind;
    return el("tr", { dataset: { account: row.account_id, kind: row.kind, signal: row.signal_id || "" } },
      el("td", {}, time(row.occurred_at)), el("td", {}, row.account_id),
      el("td", {}, el("span", { class: "badge " + row.kind }, label), row.duplicate ? " dup" : "",
        row.band_ticks !== null && row.band_ticks !== undefined
          ? el("span", { class: "badge band", title: bandText(row) }, " band") : ""),
      el("td", {}, row.side), el("td", { class: "num" }, row.quantity), el("td", {}, row.symbol),
      el("td", { class: "num hide-sm" }, row.price ?? ""), slipCell(row), el("td", { class: "num" }, ms(row.e2e_ms)));
  }

  refusal(row) {
    return el("tr", { dataset: { account: row.account_id, kind: "error", code: row.code || "", signal: row.signal_id || "" } },
      el("td", {}, time(row.occurred_at)), el("td", {}, row.account_id),
      el("td", {}, el("span", { class: "badge " + (row.code || "") }, (row.code || row.stage).toLowerCase())),
      el("td", { colspan: 6, class: "muted" }, row.reason));
  }

  show(row) {
    const stamps = row.stamps || {};
    const present = STAGES.filter((s) => stamps[s] !== undefined);
    this.detail.replaceChildren(el("h2", {}, "Copy waterfall"));
    const facts = pricing(row);
    if (facts.length) this.detail.append(el("ul", { class: "muted pricing" }, facts.map((f) => el("li", {}, f))));
    if (present.length < 2) {
      this.detail.append(el("p", { class: "muted" }, "No stage times on this record."));
      return;
    }
    const t0 = stamps[present[0]];
    const total = Math.max(stamps[present[present.length - 1]] - t0, 1e-6);
    const box = el("div", { class: "waterfall", id: "waterfall" },
      el("p", { class: "muted" }, `${row.account_id} · ${row.signal_id || ""} · total ${(total * 1000).toFixed(1)} ms`));
    for (let i = 1; i < present.length; i++) {
      const start = stamps[present[i - 1]] - t0;
      const span = stamps[present[i]] - stamps[present[i - 1]];
      const bar = el("div", { class: "bar" });
      bar.style.left = `${(start / total) * 100}%`;
      bar.style.width = `${Math.max((span / total) * 100, 0.5)}%`;
      box.append(el("div", { class: "bar-row" }, el("span", {}, `${present[i - 1]}→${present[i]}`),
        el("div", { class: "track" }, bar), el("span", {}, `${(span * 1000).toFixed(2)} ms`)));
    }
    this.detail.append(box);
  }
}

const FILL_KINDS = ["fill", "partial_fill"];

function isFollowerFill(row) {
  return !row.is_leader && FILL_KINDS.includes(row.kind);
}

function ticks(value) {
  const n = Number(value);
  return `${n > 0 ? "+" : ""}${n.toFixed(2)} t`;
}

function slipCell(row) {
  if (!isFollowerFill(row)) return el("td", { class: "num muted" }, "");
  const known = row.slippage_leader_ticks !== null && row.slippage_leader_ticks !== undefined;
  if (!known) return el("td", { class: "num muted", title: "leader fill not seen yet: slippage unknown" }, "?");
  const n = Number(row.slippage_leader_ticks);
  return el("td", { class: "num " + (n > 0 ? "neg" : n < 0 ? "pos" : ""), title: `${row.slippage_leader_amount} vs leader ${row.leader_price}` },
    ticks(row.slippage_leader_ticks));
}

function bandText(row) {
  return `market order protected: limit ${row.band_ticks} ticks through the touch ${row.band_touch}` +
    (row.reference_price ? `, reference ${row.reference_price}` : "");
}

// What the detail panel says about a copy's prices: band, reference, slippage (or why unknown).
function pricing(row) {
  const facts = [];
  if (row.band_ticks !== null && row.band_ticks !== undefined) facts.push(bandText(row));
  if (row.reference_price) facts.push(`reference price at fan-out: ${row.reference_price}`);
  if (isFollowerFill(row)) {
    facts.push(row.slippage_leader_ticks === null || row.slippage_leader_ticks === undefined
      ? "slippage vs leader: unknown (no leader fill seen)"
      : `slippage vs leader ${row.leader_price}: ${ticks(row.slippage_leader_ticks)} (${row.slippage_leader_amount})`);
    facts.push(row.slippage_ref_ticks === null || row.slippage_ref_ticks === undefined
      ? "slippage vs reference: unknown (no fresh quote at fan-out)"
      : `slippage vs reference: ${ticks(row.slippage_ref_ticks)} (${row.slippage_ref_amount})`);
  }
  return facts;
}
