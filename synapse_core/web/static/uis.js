// Switching: each UI's profile stack (global > work__X), the active one marked, use and back.
import { api } from "./api.js";
import { clear, h, toast } from "./dom.js";

export async function showUis(main) {
  clear(main, h("h1", {}, "Switch"), h("p", { class: "loading" }, "Loading…"));
  let status;
  let packs;
  try {
    [status, packs] = await Promise.all([api("/store/status"), api("/library?limit=500&sort=name")]);
  } catch (error) {
    clear(main, h("h1", {}, "Switch"), h("p", { class: "error", role: "alert" }, error.message));
    return;
  }
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const fail = (e) => { error.textContent = e.message; error.hidden = false; };
  const reload = () => showUis(main);

  const rows = status.uis.map((u) => h("section", { class: "ui-card card-box", dataset: { ui: u.ui }, "aria-labelledby": `ui-${u.ui}` },
    h("header", {}, h("h2", { id: `ui-${u.ui}` }, u.ui),
      h("button", { disabled: u.stack.length < 2, onclick: () => back(u.ui),
        "aria-label": `Back ${u.ui} to ${u.stack.length > 1 ? u.stack[u.stack.length - 2] : "global"}` }, "Back")),
    h("ol", { class: "stack", "aria-label": `${u.ui} profile stack` }, u.stack.map((p, i) => {
      const active = i === u.stack.length - 1;
      return h("li", { class: active ? "active" : null, "aria-current": active ? "true" : null },
        p, active ? h("span", { class: "badge active" }, "active") : null);
    })),
    h("p", { class: "muted" }, `${u.entries} files in view`,
      u.missing.length ? ` · ${u.missing.length} missing` : "", u.shadowed.length ? ` · ${u.shadowed.length} shadowed` : ""),
    u.shadowed.length ? h("details", {}, h("summary", {}, "Shadowed"), h("ul", {}, u.shadowed.map((s) => h("li", {}, s)))) : null));

  const packSelect = h("input", { list: "pack-names", name: "pack", placeholder: "Pack name", "aria-label": "Pack to use", required: true });
  const names = h("datalist", { id: "pack-names" }, packs.items.map((p) => h("option", { value: p.name })));
  const boxes = status.uis.map((u) => h("label", {}, h("input", { type: "checkbox", name: "ui", value: u.ui, checked: true }), ` ${u.ui}`));
  const form = h("form", { class: "use-form card-box", onsubmit: (e) => { e.preventDefault(); use(); } },
    h("h2", {}, "Use a pack"), h("div", { class: "row" }, packSelect, names, h("button", { class: "primary", type: "submit" }, "Use")),
    h("fieldset", { class: "ui-choice" }, h("legend", {}, "UIs"), boxes));

  clear(main, h("h1", {}, "Switch"), error, form, h("div", { class: "ui-grid" }, rows));
  document.body.dataset.ready = "uis";

  async function use() {
    const uis = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    try {
      const result = await api("/profiles/use", { method: "POST", body: { pack: packSelect.value, uis } });
      toast(`${Object.keys(result.uis).join(", ")} now show work__${packSelect.value}`);
      reload();
    } catch (e) { fail(e); }
  }

  async function back(ui) {
    try {
      const result = await api("/profiles/back", { method: "POST", body: { uis: [ui] } });
      toast(`${ui}: ${result.uis[ui][result.uis[ui].length - 1]}`);
      reload();
    } catch (e) { fail(e); }
  }
}
