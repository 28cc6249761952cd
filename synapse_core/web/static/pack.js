// One pack: previews, description, trigger words, files, where each UI sees them, policy,
// switching to it, installing what is missing, removing it.
import { api, ApiError, packPath } from "./api.js";
import { bytes, clear, copyText, h, kindLabel, sanitize, toast } from "./dom.js";
import { followJob } from "./jobs.js";
import { placeholder } from "./library.js";
import { blurred } from "./settings.js";

export async function showPack(main, name) {
  clear(main, h("p", { class: "loading" }, "Loading…"));
  let details;
  let previews;
  let status;
  let exposure;
  try {
    [details, previews, status, exposure] = await Promise.all([
      api(packPath(name)), api(`${packPath(name)}/previews`), api("/store/status"), api(`${packPath(name)}/exposure`)]);
  } catch (error) {
    clear(main, h("h1", {}, name), h("p", { class: "error", role: "alert" }, error.message),
      h("p", {}, h("a", { href: "#/" }, "Back to the library")));
    return;
  }
  const { pack, lock, resources } = details;
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const jobs = h("div", { class: "jobs" });
  const fail = (e) => { error.textContent = e.message; error.hidden = false; };
  const reload = () => showPack(main, name);
  const kinds = [...new Set(pack.resources.map((r) => r.kind))];
  const missing = resources.filter((r) => !r.installed);
  const work = `work__${pack.name}`;

  const header = h("header", { class: "pack-head" },
    h("div", {},
      h("h1", {}, pack.name),
      h("p", { class: "meta" }, [kinds.map(kindLabel).join(", "), pack.base_model, pack.source.provider,
        pack.creator ? `by ${pack.creator}` : null].filter(Boolean).join(" · ")),
      pack.source.url && /^https?:\/\//.test(pack.source.url)
        ? h("p", {}, h("a", { href: pack.source.url, rel: "noopener noreferrer", target: "_blank" }, pack.source.url)) : null,
      pack.upstream !== "ok" ? h("p", { class: "badge gone" }, `The source says this pack is ${pack.upstream}`) : null,
      pack.tags.length ? h("ul", { class: "tags", "aria-label": "Tags" }, pack.tags.map((t) => h("li", {},
        h("a", { href: `#/?tag=${encodeURIComponent(t)}` }, t)))) : null),
    h("div", { class: "pack-actions" },
      missing.length ? h("button", { class: "primary", onclick: () => install() }, `Install ${missing.length} missing ${missing.length === 1 ? "file" : "files"}`) : null,
      h("button", { class: "danger", onclick: () => remove() }, "Remove…")));

  const gallery = h("section", { class: "gallery", "aria-label": "Previews" },
    previews.length ? previews.map((p) => previewButton(p, pack.name)) : placeholder({ name: pack.name, kinds }));

  const words = pack.trigger_words;
  const triggers = h("section", { "aria-labelledby": "tw" }, h("h2", { id: "tw" }, "Trigger words"),
    words.length
      ? [h("ul", { class: "triggers" }, words.map((w) => h("li", {}, h("code", {}, w),
        h("button", { class: "small", "aria-label": `Copy ${w}`, onclick: () => copy(w) }, "Copy")))),
      words.length > 1 ? h("button", { class: "small", onclick: () => copy(words.join(", ")) }, "Copy all") : null]
      : h("p", { class: "muted" }, "None recorded."));

  const files = h("section", { "aria-labelledby": "files" }, h("h2", { id: "files" }, "Files"),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Resource", "File", "Kind", "Size", "Version", "SHA-256", "Present"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, resources.map((r) => {
        const locked = lock.resources[r.id] || {};
        return h("tr", {},
          h("td", {}, r.id), h("td", {}, r.expose, locked.file_name && locked.file_name !== r.expose ? h("small", { class: "muted" }, ` (${locked.file_name})`) : null),
          h("td", {}, kindLabel(r.kind)), h("td", { class: "num" }, bytes(r.size)),
          h("td", {}, locked.version_id ?? "—"),
          h("td", {}, r.sha256 ? h("button", { class: "hash", title: r.sha256, "aria-label": `Copy SHA-256 of ${r.expose}`, onclick: () => copy(r.sha256) }, r.sha256.slice(0, 12) + "…") : "—"),
          h("td", {}, r.installed ? h("span", { class: "ok" }, "yes") : h("span", { class: "badge missing" }, "missing")));
      })))));

  const exposed = h("section", { "aria-labelledby": "exp" }, h("h2", { id: "exp" }, "In each UI"),
    exposure.length ? h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["UI", "Profile", "Resource", "Seen as", "Notes"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, exposure.map((e) => h("tr", { dataset: { ui: e.ui } }, h("td", {}, e.ui), h("td", {}, e.profile), h("td", {}, e.resource_id),
        h("td", {}, e.path ? h("code", {}, e.path) : h("span", { class: "muted" }, "not shown")),
        h("td", {}, e.path ? (e.shadows.length ? `shadows ${e.shadows.join(", ")}` : "") : e.detail || e.left_out))))))
      : h("p", { class: "muted" }, "No UI view shows this pack."));

  const uis = status.uis;
  const activeHere = uis.filter((u) => u.active === work).map((u) => u.ui);
  const choices = h("fieldset", { class: "ui-choice" }, h("legend", {}, "UIs"),
    uis.map((u) => h("label", {}, h("input", { type: "checkbox", name: "ui", value: u.ui, checked: true }), ` ${u.ui}`,
      u.active === work ? h("span", { class: "badge active" }, "active") : null)));
  const switching = h("section", { "aria-labelledby": "sw" }, h("h2", { id: "sw" }, "Use this pack"),
    h("p", { class: "muted" }, `'Use' switches the chosen UIs to ${work}, where this pack wins every name conflict; 'Back' returns them.`),
    uis.length ? [choices,
      h("div", { class: "actions" },
        h("button", { class: "primary", onclick: () => use() }, "Use"),
        activeHere.length ? h("button", { onclick: () => back(activeHere) }, `Back (${activeHere.join(", ")})`) : null)]
      : h("p", { class: "muted" }, "No UI plugin is installed."));

  const policy = h("select", { name: "policy", "aria-label": "Update policy", onchange: () => setPolicy(policy.value) },
    [["follow_latest", "Follow the latest version"], ["pinned", "Stay on this version"]].map(([v, t]) => h("option", { value: v, selected: pack.policy === v }, t)));
  const updates = h("section", { "aria-labelledby": "up" }, h("h2", { id: "up" }, "Updates"), h("label", {}, "Policy ", policy));

  const description = pack.description
    ? h("section", { "aria-labelledby": "desc" }, h("h2", { id: "desc" }, "Description"), h("div", { class: "description" }, sanitize(pack.description)))
    : null;

  clear(main, h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← Library")), header, error, jobs,
    h("div", { class: "pack-grid" }, h("div", {}, gallery, description, files, exposed),
      h("aside", {}, triggers, switching, updates)));
  document.body.dataset.ready = "pack";

  async function copy(text) {
    try { await copyText(text); toast(`Copied ${text.length > 40 ? `${text.slice(0, 40)}…` : text}`); } catch (e) { fail(e); }
  }

  function chosenUis() {
    return [...choices.querySelectorAll("input[name=ui]:checked")].map((i) => i.value);
  }

  async function use() {
    const chosen = chosenUis();
    if (!chosen.length) { fail(new Error("choose at least one UI")); return; }
    try {
      const result = await api("/profiles/use", { method: "POST", body: { pack: pack.name, uis: chosen } });
      toast(`${Object.keys(result.uis).join(", ")} now show ${work}`);
      reload();
    } catch (e) {
      if (e instanceof ApiError && missing.length) fail(new Error(`${e.message}`));
      else fail(e);
    }
  }

  async function back(list) {
    try {
      const result = await api("/profiles/back", { method: "POST", body: { uis: list } });
      toast(Object.entries(result.uis).map(([ui, stack]) => `${ui}: ${stack[stack.length - 1]}`).join(", "));
      reload();
    } catch (e) { fail(e); }
  }

  async function setPolicy(value) {
    try {
      await api(`${packPath(pack.name)}/policy`, { method: "POST", body: { policy: value } });
      toast(value === "pinned" ? "Pinned to this version" : "Follows the latest version");
    } catch (e) { fail(e); }
  }

  async function install() {
    try {
      const accepted = await api(`${packPath(pack.name)}/install`, { method: "POST" });
      const { card, finished } = followJob(accepted.job_id, { title: `Install ${pack.name}` });
      jobs.append(card);
      const job = await finished;
      if (job && job.state === "succeeded") reload();
    } catch (e) { fail(e); }
  }

  async function remove() {
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "rm-title" },
      h("form", { method: "dialog" }, h("h2", { id: "rm-title" }, `Remove ${pack.name}?`),
        h("p", {}, "It leaves every profile; its files stay in the store until 'synapse gc'."),
        h("div", { class: "actions" }, h("button", { value: "cancel" }, "Cancel"), h("button", { class: "danger", value: "remove" }, "Remove"))));
    document.body.append(dialog);
    dialog.addEventListener("close", async () => {
      dialog.remove();
      if (dialog.returnValue !== "remove") return;
      try {
        await api(packPath(pack.name), { method: "DELETE" });
        toast(`Removed ${pack.name}`);
        location.hash = "#/";
      } catch (e) { fail(e); }
    });
    dialog.showModal();
  }
}

function previewButton(preview, name) {
  const blur = blurred(preview.nsfw);
  const media = preview.media === "video"
    ? h("video", { src: preview.url, muted: true, loop: true, playsinline: true, preload: "metadata", class: blur ? "blur" : null })
    : h("img", { src: `${preview.url}&w=384`, alt: `Preview of ${name}`, loading: "lazy", class: blur ? "blur" : null,
      onerror: (e) => e.target.replaceWith(h("span", { class: "muted" }, "preview unreadable")) });
  return h("button", { class: "preview", "aria-label": `Enlarge preview ${preview.file}${blur ? " (blurred)" : ""}`,
    onclick: () => enlarge(preview, name) }, media);
}

function enlarge(preview, name) {
  const big = preview.media === "video"
    ? h("video", { src: preview.url, controls: true, autoplay: true, loop: true })
    : h("img", { src: preview.url, alt: `Preview of ${name}` });
  const dialog = h("dialog", { class: "lightbox", "aria-label": `Preview of ${name}` },
    h("form", { method: "dialog" }, big,
      h("p", { class: "muted" }, preview.file, preview.nsfw ? ` · rated ${preview.nsfw}` : ""),
      h("div", { class: "actions" }, h("button", { value: "close", autofocus: true }, "Close"))));
  dialog.addEventListener("close", () => dialog.remove());
  dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });
  document.body.append(dialog);
  dialog.showModal();
}
