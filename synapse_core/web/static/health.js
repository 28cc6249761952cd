// Health: doctor's findings and its repairs, the plugins, and where the disk goes.
import { api } from "./api.js";
import { bytes, clear, h } from "./dom.js";
import { followJob } from "./jobs.js";

export async function showHealth(main) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const fail = (e) => { error.textContent = e.message; error.hidden = false; };
  const doctor = h("section", { class: "card-box", "aria-labelledby": "doc" });
  const plugins = h("section", { class: "card-box", "aria-labelledby": "plg" }, h("h2", { id: "plg" }, "Plugins"));
  const disk = h("section", { class: "card-box", "aria-labelledby": "dsk" }, h("h2", { id: "dsk" }, "Disk use"));
  clear(main, h("h1", {}, "Health"), error, doctor, disk, plugins);
  await Promise.all([runDoctor({}), showPlugins(), showDisk()]);
  document.body.dataset.ready = "health";

  async function runDoctor(options) {
    clear(doctor, h("h2", { id: "doc" }, "Doctor"), h("p", { class: "loading" }, "Checking…"));
    let report;
    try { report = await api("/store/doctor", { method: "POST", body: options }); } catch (e) { fail(e); clear(doctor, h("h2", { id: "doc" }, "Doctor")); return; }
    const open = report.problems.filter((p) => !p.fixed);
    const notices = report.notices || [];
    const problems = new Set(report.problems.map((p) => p.check));
    const noted = new Set(notices.map((n) => n.check));
    clear(doctor, h("h2", { id: "doc" }, "Doctor"),
      h("p", { class: open.length ? "warn" : "ok", dataset: { problems: open.length, notices: notices.length } },
        open.length ? `${open.length} ${open.length === 1 ? "problem" : "problems"} found` : "Everything checks out."),
      report.problems.length ? h("ul", { class: "problems" }, report.problems.map((p) => h("li", { class: p.fixed ? "fixed" : "open" },
        h("strong", {}, p.check), `: ${p.message}`, p.fixed ? h("span", { class: "badge ok" }, "fixed") : null))) : null,
      notices.length ? h("ul", { class: "notices" }, notices.map((n) => h("li", {}, h("strong", {}, "note"), `: ${n.message}`))) : null,
      h("ul", { class: "checks" }, report.checks.filter((c) => !problems.has(c) && !noted.has(c)).map((c) => h("li", {}, "✓ ", c))),
      problems.has("locked blobs present") || noted.has("locked blobs present") ? installButtons() : null,
      report.plugin_failures.length ? h("ul", {}, report.plugin_failures.map((f) => h("li", { class: "error" }, f))) : null,
      h("div", { class: "actions" },
        h("button", { class: open.length ? "primary" : null, onclick: () => runDoctor({ fix: true }) }, "Fix problems"),
        h("button", { onclick: () => runDoctor({ verify_blobs: true }) }, "Verify every file's hash"),
        h("button", { onclick: () => runDoctor({ rebuild_views: true, fix: true }) }, "Rebuild views"),
        h("button", { onclick: () => runDoctor({}) }, "Check again")));
  }

  // doctor cannot download: missing files are fetched by installing their packs
  function installButtons() {
    const box = h("div", { class: "install-missing" });
    api("/library?installed=false&limit=500").then((page) => {
      box.append(h("p", {}, "Files that are not in the store come back by installing their packs:"),
        h("ul", {}, page.items.map((item) => h("li", {}, item.name, " ",
          h("button", { class: "small primary", onclick: (e) => install(item.name, e.target) }, `Install ${item.name}`)))));
    }).catch(fail);
    return box;
  }

  async function install(name, button) {
    button.disabled = true;
    try {
      const accepted = await api(`/packs/${encodeURIComponent(name)}/install`, { method: "POST" });
      const { card, finished } = followJob(accepted.job_id, { title: `Install ${name}` });
      button.replaceWith(card);
      const job = await finished;
      if (job && job.state === "succeeded") runDoctor({});
    } catch (e) { button.disabled = false; fail(e); }
  }

  async function showPlugins() {
    try {
      const list = await api("/plugins");
      plugins.append(h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Plugin", "Version", "Status", "Provides"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, list.map((p) => h("tr", {},
          h("td", {}, p.name, p.builtin ? h("small", { class: "muted" }, " built in") : null),
          h("td", {}, p.distribution ? `${p.distribution} ${p.version || ""}` : "—"),
          h("td", {}, h("span", { class: p.status === "failed" ? "badge missing" : "ok" }, p.status), p.reason ? h("small", { class: "muted" }, ` ${p.reason}`) : null),
          h("td", {}, Object.entries(p.contributes).map(([k, v]) => `${k}: ${v.join(", ")}`).join("; "))))))));
    } catch (e) { fail(e); }
  }

  async function showDisk() {
    try {
      const du = await api("/store/du");
      const top = [...du.packs].sort((a, b) => b.bytes - a.bytes).slice(0, 20);
      const max = Math.max(1, ...top.map((p) => p.bytes));
      const without = du.referenced_bytes + du.saved_by_dedup;
      disk.append(
        h("p", {}, `The store holds ${bytes(du.store_bytes)}; `, h("strong", { class: "saved" }, `deduplication saved ${bytes(du.saved_by_dedup)}`),
          ` (${bytes(without)} if every pack kept its own copies).`),
        h("div", { class: "bars", role: "img", "aria-label": `Deduplication: ${bytes(du.referenced_bytes)} stored instead of ${bytes(without)}` },
          bar("Without dedup", without, Math.max(without, 1)), bar("Stored", du.referenced_bytes, Math.max(without, 1))),
        h("h3", {}, "Largest packs"),
        h("ol", { class: "bars" }, top.map((p) => h("li", {}, bar(p.pack, p.bytes, max, p.shared_bytes)))));
    } catch (e) { fail(e); }
  }
}

function bar(label, value, max, shared = 0) {
  return h("div", { class: "bar" }, h("span", { class: "bar-label" }, label),
    h("span", { class: "bar-track" }, h("span", { class: "bar-fill", style: `width:${(100 * value) / max}%` },
      shared ? h("span", { class: "bar-shared", style: `width:${(100 * shared) / Math.max(value, 1)}%`, title: `${bytes(shared)} shared with other packs` }) : null)),
    h("span", { class: "bar-value" }, bytes(value), shared ? h("small", { class: "muted" }, ` (${bytes(shared)} shared)`) : null));
}
