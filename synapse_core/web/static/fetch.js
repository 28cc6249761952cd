// Fetching: import any ref a source knows, with the job's live progress; remote search as
// cards; check for updates, with the plan, the candidates when a choice is needed, and apply.
import { api } from "./api.js";
import { bytes, clear, h, kindLabel, toast } from "./dom.js";
import { followJob } from "./jobs.js";

export async function showFetch(main, params) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const fail = (e) => { error.textContent = e.message; error.hidden = false; };
  const jobs = h("div", { class: "jobs", "aria-label": "Jobs" });

  const ref = h("input", { name: "ref", placeholder: "https://civitai.com/models/…, an AIR, a Hugging Face URL, a path on the server",
    "aria-label": "Reference to import", required: true, value: params.get("ref") || "" });
  const name = h("input", { name: "name", placeholder: "Pack name (optional)", "aria-label": "Pack name" });
  const follow = h("input", { type: "checkbox", name: "follow" });
  const download = h("input", { type: "checkbox", name: "sync", checked: true });
  const importForm = h("form", { class: "card-box", onsubmit: (e) => { e.preventDefault(); start(ref.value.trim(), name.value.trim()); } },
    h("h2", {}, "Import"),
    h("div", { class: "row" }, ref, name, h("button", { class: "primary", type: "submit" }, "Import")),
    h("div", { class: "row" }, h("label", {}, download, " Download the files now"), h("label", {}, follow, " Follow the latest version")));

  const query = h("input", { type: "search", name: "remote-q", placeholder: "Search the sources", "aria-label": "Search the sources" });
  const kind = h("select", { name: "remote-kind", "aria-label": "Kind" }, h("option", { value: "" }, "Any kind"),
    ["checkpoint", "lora", "embedding", "vae", "controlnet", "upscaler"].map((k) => h("option", { value: k }, kindLabel(k))));
  const hits = h("div", { class: "hits", "aria-live": "polite" });
  const searchForm = h("form", { class: "card-box", role: "search", onsubmit: (e) => { e.preventDefault(); search(); } },
    h("h2", {}, "Search the sources"), h("div", { class: "row" }, query, kind, h("button", { type: "submit" }, "Search")), hits);

  const plan = h("div", { class: "plan", "aria-live": "polite" });
  const updates = h("section", { class: "card-box", "aria-labelledby": "upd" }, h("h2", { id: "upd" }, "Updates"),
    h("button", { onclick: () => check(), name: "check-updates" }, "Check for updates"), plan);

  clear(main, h("h1", {}, "Fetch"), error, importForm, jobs, searchForm, updates);
  document.body.dataset.ready = "fetch";
  showRecentJobs();

  async function showRecentJobs() {
    try {
      const recent = await api("/jobs?limit=5");
      for (const job of recent.filter((j) => j.state === "running" || j.state === "queued")) {
        jobs.append(followJob(job.id, { title: job.kind, onDone: doneLink }).card);
      }
    } catch { /* the page works without the list */ }
  }

  async function start(value, packName) {
    error.hidden = true;
    if (!value) return;
    const body = { ref: value };
    if (packName) body.name = packName;
    if (follow.checked) body.policy = "follow_latest";
    if (download.checked) body.sync = true;
    try {
      const accepted = await api("/packs/import", { method: "POST", body });
      const { card } = followJob(accepted.job_id, { title: `Import ${value}`, onDone: doneLink });
      jobs.prepend(card);
    } catch (e) { fail(e); }
  }

  async function search() {
    error.hidden = true;
    clear(hits, h("p", { class: "loading" }, "Searching…"));
    const q = new URLSearchParams({ q: query.value, remote: "true" });
    if (kind.value) q.set("type", kind.value);
    try {
      const result = await api(`/search?${q}`);
      clear(hits,
        result.errors.map((m) => h("p", { class: "error" }, m)),
        result.remote.length ? h("ul", { class: "hit-list" }, result.remote.map((hit) => h("li", { class: "hit" },
          h("strong", {}, hit.name),
          h("span", { class: "meta" }, [kindLabel(hit.kind), hit.base_model, hit.creator ? `by ${hit.creator}` : null, hit.source].filter(Boolean).join(" · ")),
          hit.tags.length ? h("span", { class: "meta" }, hit.tags.slice(0, 6).join(", ")) : null,
          h("code", { class: "ref" }, hit.ref),
          h("button", { class: "small primary", "aria-label": `Import ${hit.name}`, onclick: () => start(hit.ref, "") }, "Import"))))
          : h("p", { class: "muted" }, "Nothing found."),
        result.local.length ? h("p", { class: "muted" }, `Already in the library: ${result.local.map((p) => p.name).join(", ")}`) : null);
    } catch (e) { clear(hits); fail(e); }
  }

  async function check() {
    error.hidden = true;
    clear(plan, h("p", { class: "loading" }, "Asking the sources…"));
    try {
      showPlan(await api("/updates/plan"));
    } catch (e) { clear(plan); fail(e); }
  }

  function showPlan(p) {
    const notes = [
      p.current.length ? `Up to date: ${p.current.join(", ")}` : null,
      p.pinned.length ? `Pinned: ${p.pinned.join(", ")}` : null,
      ...p.unavailable.map((n) => `${n.pack}: ${n.message}`),
      ...p.removed.map((n) => `${n.pack}: ${n.message}`),
      ...p.failed.map((n) => `${n.pack}: ${n.message}`),
    ].filter(Boolean);
    clear(plan,
      p.updates.length ? h("ul", { class: "updates" }, p.updates.map((u) => h("li", { class: "update card-box", dataset: { pack: u.pack } },
        h("header", {}, h("strong", {}, u.pack), ` ${u.current_version_id ?? "?"} → ${u.latest_version_name || u.latest_version_id}`),
        h("ul", {}, u.resources.map((r) => h("li", {}, `${r.resource}: ${r.old_file} → `,
          r.ambiguous ? h("em", {}, `choose one of ${r.candidates.length} files`) : (r.new ? `${r.new.file_name} (${bytes(r.new.size)})` : "removed")))),
        h("button", { class: "primary", onclick: () => apply(u) }, "Apply")))) : h("p", {}, "No updates."),
      notes.length ? h("ul", { class: "muted" }, notes.map((n) => h("li", {}, n))) : null,
      p.updates.length > 1 && !p.updates.some((u) => u.resources.some((r) => r.ambiguous))
        ? h("button", { onclick: () => applyAll(p.updates) }, "Apply all") : null);
  }

  async function apply(update) {
    const ambiguous = update.resources.filter((r) => r.ambiguous);
    let choose = [];
    if (ambiguous.length) {
      choose = await chooseCandidates(update, ambiguous);
      if (!choose) return;
    }
    await run([update.pack], choose);
  }

  async function applyAll(list) {
    await run(list.map((u) => u.pack), []);
  }

  async function run(packs, choose) {
    try {
      const accepted = await api("/updates/apply", { method: "POST", body: { packs, choose, sync: true } });
      const { card, finished } = followJob(accepted.job_id, { title: `Update ${packs.join(", ")}` });
      jobs.prepend(card);
      const job = await finished;
      if (job && job.state === "succeeded") {
        toast(`Updated ${job.result.applied.join(", ") || "nothing"}`);
        check();
      }
    } catch (e) { fail(e); }
  }
}

// A dialog of the candidate files for each ambiguous resource; resolves with --choose values or null.
function chooseCandidates(update, ambiguous) {
  return new Promise((resolve) => {
    const groups = ambiguous.map((r) => h("fieldset", {}, h("legend", {}, `${r.resource} (was ${r.old_file})`),
      r.candidates.map((c, i) => h("label", { class: "candidate" },
        h("input", { type: "radio", name: `choose-${r.resource}`, value: `${update.pack}:${r.resource}=${c.file_id}`, checked: i === 0, required: true }),
        ` ${c.file_name}`, h("small", { class: "muted" }, ` ${bytes(c.size)} ${Object.entries(c.metadata).map(([k, v]) => `${k}=${v}`).join(" ")}${c.primary ? " · primary" : ""}`)))));
    const form = h("form", { method: "dialog" },
      h("h2", { id: "choose-title" }, `${update.pack}: which file?`),
      h("p", {}, "The new version has several files that could replace this one. The choice is remembered for later updates."),
      groups,
      h("div", { class: "actions" }, h("button", { value: "cancel", formnovalidate: true }, "Cancel"), h("button", { class: "primary", value: "ok" }, "Update")));
    const dialog = h("dialog", { class: "choose", "aria-labelledby": "choose-title" }, form);
    dialog.addEventListener("close", () => {
      const values = [...form.querySelectorAll("input[type=radio]:checked")].map((i) => i.value);
      dialog.remove();
      resolve(dialog.returnValue === "ok" ? values : null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

function doneLink(job, into) {
  if (job.state === "succeeded" && job.result && job.result.pack) {
    into.append(h("a", { href: `#/pack/${encodeURIComponent(job.result.pack)}` }, `Open ${job.result.pack}`));
    for (const w of job.result.warnings || []) into.append(h("p", { class: "muted" }, w));
  }
}
