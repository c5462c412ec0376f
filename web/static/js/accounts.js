// Accounts: add/edit accounts (credentials write-only), test a connection, edit copy rules.
import { ApiError, get, post, request } from "./api.js";
import { el, toast } from "./dom.js";
import { mountGuards } from "./guards.js";

// "a=1, b=x" ⇄ {a: 1, b: "x"}; numbers and true/false become JSON values where asked.
function pairs(obj) {
  return Object.entries(obj).map(([k, v]) => `${k}=${v}`).join(", ");
}

function parsePairs(text, typed) {
  const out = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf("=");
    const key = (at < 0 ? part : part.slice(0, at)).trim();
    const raw = at < 0 ? "" : part.slice(at + 1).trim();
    out[key] = !typed ? raw : raw === "true" ? true : raw === "false" ? false : raw !== "" && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}

export function mount(root) {
  const list = el("tbody");
  const groups = el("div", { id: "copy-groups" });
  const form = el("form", { id: "account-form", class: "form-grid", novalidate: true });
  const formError = el("p", { class: "form-error", hidden: true });
  root.append(
    el("section", { class: "panel" }, el("h2", {}, "Accounts"),
      el("div", { class: "table-wrap" }, el("table", { id: "accounts" },
        el("thead", {}, el("tr", {}, el("th", {}, "Account"), el("th", {}, "Platform"), el("th", { class: "hide-sm" }, "Broker account"),
          el("th", { class: "num" }, "Size"), el("th", {}, "Credentials"), el("th", {}, "Enabled"), el("th", {}, ""))), list))),
    el("section", { class: "panel" }, el("h2", { id: "form-title" }, "Add account"), form, formError),
    el("section", { class: "panel" }, el("h2", {}, "Copy groups and rules"), groups));
  mountGuards(root);

  let editing = null;
  let editingAccount = null;
  let platforms = [];
  let accountIds = [];

  function buildForm(account) {
    editing = account ? account.id : null;
    editingAccount = account;
    document.getElementById("form-title").textContent = account ? `Edit ${account.id}` : "Add account";
    const field = (label, input) => el("label", {}, label, input, el("span", { class: "field-error", dataset: { for: input.name } }));
    form.replaceChildren(
      field("Account id", el("input", { name: "id", value: account?.id || "", required: true, disabled: Boolean(account) })),
      field("Platform", el("select", { name: "platform" }, platforms.map((p) => el("option", { value: p, selected: account?.platform === p }, p)))),
      field("Broker account", el("input", { name: "broker_account", value: account?.broker_account || "" })),
      field("Size (account currency)", el("input", { name: "size", inputmode: "decimal", value: account?.size || "50000" })),
      field("Endpoint (optional)", el("input", { name: "endpoint", value: account?.endpoint || "", placeholder: "simulator or gateway URL" })),
      field("Settings (name=value, …)", el("input", { name: "options", value: pairs(account?.options || {}), placeholder: "appId=CopyTrader, cid=8" })),
      field("Login (write-only)", el("input", { name: "username", autocomplete: "off" })),
      field("Secret (write-only)", el("input", { name: "secret", type: "password", autocomplete: "new-password", placeholder: account?.credentials?.set ? "•••• stored" : "" })),
      field("Secret settings (write-only)", el("input", { name: "secret_options", type: "password", autocomplete: "off", placeholder: "sec=…" })),
      el("label", {}, "Enabled", el("input", { name: "enabled", type: "checkbox", checked: account ? account.enabled : true })),
      el("div", {}, el("button", { type: "submit", class: "primary" }, account ? "Save" : "Add"), " ",
        account ? el("button", { type: "button", onclick: () => buildForm(null) }, "Cancel") : ""));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const span of form.querySelectorAll(".field-error")) span.textContent = "";
    formError.hidden = true;
    const v = (name) => form.elements[name].value.trim();
    const body = { platform: v("platform"), broker_account: v("broker_account"), size: v("size"), enabled: form.elements.enabled.checked };
    if (v("endpoint") !== (editingAccount?.endpoint || "")) body.endpoint = v("endpoint");
    if (v("options") !== pairs(editingAccount?.options || {})) body.options = parsePairs(v("options"), true);
    if (v("secret")) {
      body.credentials = { secret: form.elements.secret.value, ...(v("username") ? { username: v("username") } : {}) };
      if (v("secret_options")) body.credentials.options = parsePairs(v("secret_options"), false);
    }
    try {
      if (editing) await request("PATCH", `/api/accounts/${encodeURIComponent(editing)}`, body);
      else await post("/api/accounts", { id: v("id"), ...body });
      toast("Saved");
      buildForm(null);
      load();
    } catch (error) {
      if (error instanceof ApiError && Object.keys(error.fields).length) {
        for (const [name, reason] of Object.entries(error.fields)) {
          // A platform setting is refused by name (options.heartbeat_s): shown under the settings input.
          const input = name.startsWith("credentials.options.") ? "secret_options" : name.startsWith("options.") ? "options" : name.split(".").pop();
          const span = form.querySelector(`.field-error[data-for="${CSS.escape(input)}"]`);
          if (span) span.textContent = input === name.split(".").pop() ? reason : `${name.split(".").pop()}: ${reason}`;
        }
      }
      formError.textContent = error.message + (Object.keys(error.fields).length ? ": " + Object.entries(error.fields).map(([k, r]) => `${k} ${r}`).join("; ") : "");
      formError.hidden = false;
    }
  });

  async function test(id, button) {
    button.disabled = true;
    const result = await post(`/api/accounts/${encodeURIComponent(id)}/test`).catch((e) => ({ ok: false, error: e.message }));
    button.disabled = false;
    toast(result.ok ? `${id}: ${result.state} in ${result.latency_ms} ms` : `${id}: failed (${result.error || result.state})`);
  }

  async function load() {
    const data = await get("/api/accounts");
    platforms = data.platforms;
    accountIds = data.accounts.filter((a) => a.enabled).map((a) => a.id);
    list.replaceChildren(...data.accounts.map((a) => el("tr", { dataset: { account: a.id } },
      el("td", {}, el("strong", {}, a.id), a.source === "config" ? el("span", { class: "badge" }, " config") : ""),
      el("td", {}, a.platform), el("td", { class: "hide-sm" }, a.broker_account), el("td", { class: "num" }, a.size),
      el("td", {}, a.credentials.set ? "set" : "–"), el("td", {}, a.enabled ? "yes" : "no"),
      el("td", {}, el("button", { class: "ghost", onclick: () => buildForm(a) }, "Edit"), " ",
        el("button", { class: "ghost", onclick: (e) => test(a.id, e.target) }, "Test"), " ",
        a.enabled ? el("button", { class: "ghost", onclick: async () => { await request("DELETE", `/api/accounts/${encodeURIComponent(a.id)}`); load(); } }, "Disable") : ""))));
    if (!form.children.length) buildForm(null);
    const g = await get("/api/copy-groups");
    groups.replaceChildren(...g.groups.map(renderGroup));
  }

  function renderGroup(group) {
    const rows = group.followers.map((f) => {
      const r = f.rule;
      const inputs = {
        mode: el("select", {}, ["multiplier", "fixed", "ratio"].map((m) => el("option", { value: m, selected: r.mode === m }, m))),
        quantity: el("input", { value: r.quantity, size: 3, inputmode: "numeric" }),
        multiplier: el("input", { value: r.multiplier, size: 4, inputmode: "decimal" }),
        max_quantity: el("input", { value: r.max_quantity ?? "", size: 3, inputmode: "numeric" }),
        symbol_map: el("input", { value: Object.entries(r.symbol_map).map(([k, v]) => `${k}=${v}`).join(","), size: 10 }),
        inverse: el("input", { type: "checkbox", checked: r.inverse }),
        price_band_ticks: el("input", { value: r.price_band_ticks ?? "", size: 3, inputmode: "numeric", title: "Price band in ticks: a leader's market order becomes a limit this far through the touch (empty: off)" }),
        on_no_quote: el("select", { title: "Without a fresh quote: place the market order (with a warning) or skip the copy" },
          ["market", "skip"].map((m) => el("option", { value: m, selected: (r.on_no_quote || "market") === m }, m))),
        enabled: el("input", { type: "checkbox", checked: f.enabled }),
      };
      const note = el("span", { class: "field-error" });
      const save = async () => {
        note.textContent = "";
        const num = (x) => (x.value.trim() === "" ? null : Number(x.value));
        const rule = { mode: inputs.mode.value, quantity: num(inputs.quantity), multiplier: inputs.multiplier.value.trim() };
        if (num(inputs.max_quantity) !== null) rule.max_quantity = num(inputs.max_quantity);
        rule.inverse = inputs.inverse.checked;
        rule.price_band_ticks = num(inputs.price_band_ticks);
        rule.on_no_quote = inputs.on_no_quote.value;
        rule.symbol_map = Object.fromEntries(inputs.symbol_map.value.split(",").filter(Boolean).map((p) => p.split("=").map((s) => s.trim())));
        try {
          await request("PUT", `/api/copy-groups/${encodeURIComponent(group.id)}/followers/${encodeURIComponent(f.account)}`, { rule, enabled: inputs.enabled.checked });
          toast(`${f.account}: rule saved`);
        } catch (error) {
          note.textContent = Object.entries(error.fields || {}).map(([k, v]) => `${k}: ${v}`).join("; ") || error.message;
        }
      };
      return el("tr", { dataset: { follower: f.account } }, el("td", {}, f.account), ...Object.values(inputs).map((i) => el("td", {}, i)),
        el("td", {}, el("button", { class: "ghost", onclick: save }, "Save"), " ", note));
    });
    const members = new Set([group.leader, ...group.followers.map((f) => f.account)]);
    const candidates = accountIds.filter((id) => !members.has(id));
    const pick = el("select", { name: "new-follower", dataset: { group: group.id } }, candidates.map((id) => el("option", { value: id }, id)));
    const addNote = el("span", { class: "field-error" });
    const add = async () => {
      addNote.textContent = "";
      try {
        // Joins with a 1:1 rule; edit the rule in its row afterwards.
        await request("PUT", `/api/copy-groups/${encodeURIComponent(group.id)}/followers/${encodeURIComponent(pick.value)}`,
          { rule: { mode: "multiplier", multiplier: "1" }, enabled: true });
        toast(`${pick.value} now follows ${group.leader}`);
        load();
      } catch (error) {
        addNote.textContent = Object.entries(error.fields || {}).map(([k, v]) => `${k}: ${v}`).join("; ") || error.message;
      }
    };
    const adder = candidates.length
      ? el("p", { class: "add-follower" }, "Add follower ", pick, " ", el("button", { class: "ghost", dataset: { action: "add-follower" }, onclick: add }, "Add"), " ", addNote)
      : "";
    return el("div", { dataset: { group: group.id } }, el("p", {}, el("strong", {}, group.id), el("span", { class: "muted" }, ` — leader ${group.leader}`)),
      el("div", { class: "table-wrap log" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Follower", "Mode", "Qty", "Mult", "Max", "Symbol map", "Inverse", "Band (ticks)", "No quote", "On", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows))), adder);
  }

  load();
  return {};
}
