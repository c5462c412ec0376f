// Dashboard: today's P&L (total and per account), unrealised P&L at market (marks), account
// lights, copies, latency and histogram, and the market price chart.
import { get } from "./api.js";
import { el, money, ms, signClass } from "./dom.js";
import { PriceChart } from "./pricechart.js";
import { PriceStream, age, known } from "./prices.js";

export function mount(root, { setLive } = {}) {
  const cards = el("div", { class: "cards", id: "dash-cards" });
  const perAccount = el("tbody");
  const canvas = el("canvas", { class: "histogram", id: "latency-histogram" });
  const chartBox = el("section", { class: "panel", id: "price-panel" });
  root.append(cards,
    el("div", { class: "grid2" },
      el("section", { class: "panel" }, el("h2", {}, "Copy latency today (leader seen → follower ack)"), canvas),
      el("section", { class: "panel" }, el("h2", {}, "P&L today by account"),
        el("div", { class: "table-wrap log" }, el("table", { id: "pnl-today" },
          el("thead", {}, el("tr", {}, el("th", {}, "Account"), el("th", { class: "num" }, "Copies"),
            el("th", { class: "num" }, "P&L today"), el("th", { class: "num" }, "Unrealised"), el("th", { class: "num" }, "Quote age"))),
          perAccount)))),
    chartBox);
  let dash = null, marks = null;
  const chart = new PriceChart(chartBox);

  // An unrealised figure: money when known, "unknown" (never $0.00) when a quote is missing.
  const unrealised = (value) => known(value) ? money(value) : "unknown";

  function render() {
    if (!dash) return;
    const d = dash;
    const card = (label, value, cls = "", id = "", title = "") => el("div", { class: "card", id, title },
      el("div", { class: "label" }, label), el("div", { class: "value " + cls }, value));
    const marked = marks && marks.market_data;
    const ages = marked ? Object.values(marks.accounts).filter((a) => a.open_positions).map((a) => a.quote_age_s) : [];
    const oldest = ages.includes(null) ? null : Math.max(0, ...ages);
    const when = ages.length ? age(oldest) : "nothing open";
    cards.replaceChildren(
      card("P&L today (realised)", money(d.pnl_today), signClass(d.pnl_today), "card-pnl"),
      marked
        ? card(`Unrealised P&L (at market, ${when})`, unrealised(marks.unrealized_pnl),
          known(marks.unrealized_pnl) ? signClass(marks.unrealized_pnl) : "muted", "card-unrealized")
        : card("Unrealised P&L", "no market data", "muted", "card-unrealized", "configure market_data: to mark positions"),
      card("Accounts up / degraded / down", `${d.accounts.up} / ${d.accounts.degraded} / ${d.accounts.down}`, "", "card-accounts"),
      card("Copies today", d.copies_today.toLocaleString(), "", "card-copies"),
      card("Latency p50", ms(d.latency_ms.p50), "", "card-p50"),
      card("Latency p99", ms(d.latency_ms.p99), "", "card-p99"),
      card("Copying", d.paused_all ? "PAUSED" : "on", d.paused_all ? "neg" : "pos", "card-copying"));
    perAccount.replaceChildren(...d.per_account.map((a) => {
      const m = marked ? marks.accounts[a.account_id] : null;
      const value = m ? m.unrealized_pnl : (marked ? "0" : null);
      return el("tr", { dataset: { account: a.account_id } },
        el("td", {}, a.account_id, a.role === "leader" ? " (leader)" : ""), el("td", { class: "num" }, a.copies_today),
        el("td", { class: "num " + signClass(a.pnl_today) }, money(a.pnl_today)),
        el("td", { class: "num unrealized " + (known(value) ? signClass(value) : "muted") }, marked ? unrealised(value) : "–"),
        el("td", { class: "num muted" }, m && m.open_positions ? age(m.quote_age_s) : "–"));
    }));
    drawHistogram(canvas, d.histogram);
  }

  async function refresh() {
    dash = await get("/api/dashboard");
    render();
  }

  const prices = new PriceStream({
    status: setLive,
    joined(snapshot) {
      marks = snapshot.marks;
      chart.feeds(marks.feeds);
      if (!snapshot.market_data) chartBox.replaceChildren(el("h2", {}, "Market price"),
        el("p", { class: "muted", id: "price-none" }, "No market data source configured (market_data: in the config)."));
      else chart.load(snapshot.history);
      render();
    },
    quotes(rows) { chart.push(rows); },
    marks(latest) { marks = latest; chart.feeds(latest.feeds); render(); },
  }).connect();

  refresh();
  const timer = setInterval(refresh, 2000);
  return { unmount() { clearInterval(timer); prices.close(); chart.destroy(); } };
}

function drawHistogram(canvas, { edges_ms: edges, counts }) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const labels = edges.map((e, i) => `<${e}`).concat([`≥${edges[edges.length - 1]}`]);
  const max = Math.max(1, ...counts);
  const slot = width / counts.length, base = height - 20;
  g.font = "11px system-ui"; g.textAlign = "center";
  counts.forEach((count, i) => {
    const h = (count / max) * (base - 16);
    g.fillStyle = "#4c8dff";
    g.fillRect(i * slot + 4, base - h, slot - 8, h);
    g.fillStyle = "#8b98a9";
    g.fillText(labels[i] + " ms", i * slot + slot / 2, height - 5);
    if (count) { g.fillStyle = "#e6edf3"; g.fillText(String(count), i * slot + slot / 2, base - h - 4); }
  });
}
