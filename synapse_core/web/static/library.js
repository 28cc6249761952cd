// The library: filters over the API's cards, and a windowed grid: only the rows in and near
// the viewport exist in the DOM, and pages of cards are fetched as they come into view.
import { api } from "./api.js";
import { bytes, clear, debounce, h, kindLabel } from "./dom.js";
import { blurred, NSFW_LEVELS, nsfwSetting, setNsfwSetting } from "./settings.js";

const PAGE = 120;
const GAP = 14;
const MIN_CARD = 180;
const INFO_HEIGHT = 86;
const OVERSCAN_ROWS = 2;
const SORTS = [["name", "Name"], ["-name", "Name, Z to A"], ["-size", "Largest"], ["size", "Smallest"], ["newest", "Recently added"],
  ["oldest", "Oldest"], ["base_model", "Base model"], ["kind", "Kind"], ["source", "Source"]];
const FILTERS = ["q", "kind", "base_model", "source", "tag", "installed", "updates", "sort"];

let view = null; // the mounted library, if any

export async function showLibrary(main, params) {
  if (view) view.destroy();
  view = new LibraryView(main, params);
  await view.start();
}

class LibraryView {
  constructor(main, params) {
    this.main = main;
    this.filters = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || ""]));
    this.filters.sort ||= "name";
    this.generation = 0;
    this.total = 0;
    this.pages = new Map(); // page number -> array of items, or a promise while loading
    this.cells = new Map(); // index -> element
    this.firstScreen = null;
    this.onScroll = () => this.schedule();
    this.onResize = () => { this.layout(); this.schedule(); };
  }

  async start() {
    this.count = h("p", { class: "count", "aria-live": "polite" }, "");
    this.error = h("p", { class: "error", role: "alert", hidden: true });
    this.grid = h("div", { class: "grid", role: "list", "aria-label": "Packs" });
    this.toolbar = h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() });
    clear(this.main, h("h1", { class: "visually-hidden" }, "Library"), this.toolbar, this.count, this.error, this.grid);
    window.addEventListener("scroll", this.onScroll, { passive: true });
    window.addEventListener("resize", this.onResize);
    this.buildToolbar(null);
    api("/library/facets").then((facets) => this.buildToolbar(facets)).catch((e) => this.fail(e));
    await this.reload();
  }

  destroy() {
    window.removeEventListener("scroll", this.onScroll);
    window.removeEventListener("resize", this.onResize);
    this.generation += 1;
  }

  buildToolbar(facets) {
    const f = this.filters;
    const select = (name, label, options, all = "All") => {
      const el = h("select", { name, "aria-label": label, onchange: () => this.set(name, el.value) },
        h("option", { value: "" }, `${label}: ${all}`),
        options.map(([value, text]) => h("option", { value, selected: f[name] === value }, text)));
      return el;
    };
    const facet = (list, fmt = (v) => v) => (list || []).map((x) => [x.value, `${fmt(x.value)} (${x.count})`]);
    const search = h("input", { type: "search", name: "q", value: f.q, placeholder: "Search names, files, trigger words, creators",
      "aria-label": "Search", autocomplete: "off" });
    search.addEventListener("input", debounce(() => this.set("q", search.value), 150));
    const nsfw = h("select", { name: "nsfw", "aria-label": "NSFW previews shown",
      onchange: () => { setNsfwSetting(nsfw.value); this.refreshBlur(); } },
    NSFW_LEVELS.map(([value, text]) => h("option", { value, selected: nsfwSetting() === value }, `Previews: ${text}`)));
    const keepFocus = document.activeElement && this.toolbar.contains(document.activeElement) ? document.activeElement.name : null;
    clear(this.toolbar,
      search,
      select("kind", "Kind", facet(facets?.kinds, kindLabel)),
      select("base_model", "Base model", facet(facets?.base_models)),
      select("source", "Source", facet(facets?.sources)),
      select("tag", "Tag", facet(facets?.tags)),
      select("installed", "Files", [["true", `Installed${facets ? ` (${facets.installed})` : ""}`],
        ["false", `Missing${facets ? ` (${facets.missing})` : ""}`]], "any"),
      select("updates", "Updates", [["true", `Has an update${facets ? ` (${facets.updates})` : ""}`]], "any"),
      h("label", { class: "sort" }, "Sort ",
        h("select", { name: "sort", onchange: (e) => this.set("sort", e.target.value) },
          SORTS.map(([value, text]) => h("option", { value, selected: f.sort === value }, text)))),
      nsfw);
    if (keepFocus) this.toolbar.elements[keepFocus]?.focus();
  }

  set(name, value) {
    if (this.filters[name] === value) return;
    this.filters[name] = value;
    const query = new URLSearchParams(Object.entries(this.filters).filter(([k, v]) => v && !(k === "sort" && v === "name")));
    history.replaceState(null, "", `#/${query.toString() ? `?${query}` : ""}`);
    this.reload().catch((e) => this.fail(e));
  }

  query(offset) {
    const q = new URLSearchParams({ offset, limit: PAGE });
    for (const [k, v] of Object.entries(this.filters)) if (v) q.set(k, v);
    return `/library?${q}`;
  }

  async reload() {
    const generation = ++this.generation;
    this.error.hidden = true;
    const first = await api(this.query(0));
    if (generation !== this.generation) return;
    this.pages = new Map([[0, first.items]]);
    this.total = first.total;
    for (const el of this.cells.values()) el.remove();
    this.cells.clear();
    this.count.textContent = `${first.total} ${first.total === 1 ? "pack" : "packs"}`;
    if (!first.total) {
      this.grid.style.height = "auto";
      clear(this.grid, h("p", { class: "empty" }, this.hasFilters()
        ? "No pack matches these filters."
        : "No packs yet: import one on the Fetch page, or with 'synapse import'."));
      this.markReady([]);
      return;
    }
    if (this.grid.querySelector(".empty")) clear(this.grid);
    this.layout();
    this.render();
    this.markReady([...this.cells.values()]);
  }

  hasFilters() {
    return FILTERS.some((k) => k !== "sort" && this.filters[k]);
  }

  // The first screenful is on screen once its thumbnails have loaded (or failed to).
  markReady(cells) {
    const images = cells.map((c) => c.querySelector("img")).filter(Boolean);
    Promise.all(images.map((img) => (img.complete ? null : new Promise((r) => {
      img.addEventListener("load", r, { once: true });
      img.addEventListener("error", r, { once: true });
    })))).then(() => {
      document.body.dataset.ready = "library";
      performance.mark("library-interactive");
    });
  }

  fail(error) {
    this.error.textContent = error.message;
    this.error.hidden = false;
  }

  layout() {
    const width = this.grid.clientWidth || this.main.clientWidth;
    const min = width < 520 ? 150 : MIN_CARD; // two columns on a phone
    this.cols = Math.max(1, Math.floor((width + GAP) / (min + GAP)));
    this.cardWidth = (width - GAP * (this.cols - 1)) / this.cols;
    this.rowHeight = Math.round(this.cardWidth * 1.0 + INFO_HEIGHT) + GAP;
    this.grid.style.height = `${Math.ceil(this.total / this.cols) * this.rowHeight - GAP}px`;
    for (const [index, el] of this.cells) this.place(el, index);
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => { this.pending = null; this.render(); });
  }

  render() {
    if (!this.total) return;
    const top = this.grid.getBoundingClientRect().top;
    const firstRow = Math.max(0, Math.floor(-top / this.rowHeight) - OVERSCAN_ROWS);
    const lastRow = Math.floor((window.innerHeight - top) / this.rowHeight) + OVERSCAN_ROWS;
    const from = firstRow * this.cols;
    const to = Math.min(this.total, (lastRow + 1) * this.cols);
    for (const [index, el] of this.cells) {
      if (index < from || index >= to) { el.remove(); this.cells.delete(index); }
    }
    for (let index = from; index < to; index += 1) {
      const item = this.item(index);
      const existing = this.cells.get(index);
      if (existing && (existing.dataset.name === (item ? item.name : ""))) continue;
      const el = item ? this.card(item) : h("div", { class: "card skeleton", "aria-hidden": "true", dataset: { name: "" } });
      this.place(el, index);
      if (existing) existing.replaceWith(el); else this.grid.append(el);
      this.cells.set(index, el);
    }
  }

  item(index) {
    const page = Math.floor(index / PAGE);
    const items = this.pages.get(page);
    if (Array.isArray(items)) return items[index - page * PAGE] || null;
    if (!items) {
      const generation = this.generation;
      this.pages.set(page, api(this.query(page * PAGE)).then((result) => {
        if (generation !== this.generation) return;
        this.pages.set(page, result.items);
        this.render();
      }).catch((e) => { this.pages.delete(page); this.fail(e); }));
    }
    return null;
  }

  place(el, index) {
    const row = Math.floor(index / this.cols);
    const col = index % this.cols;
    el.style.transform = `translate(${col * (this.cardWidth + GAP)}px, ${row * this.rowHeight}px)`;
    el.style.width = `${this.cardWidth}px`;
    el.style.height = `${this.rowHeight - GAP}px`;
  }

  card(item) {
    const preview = item.preview;
    const thumb = preview
      ? h("img", { src: `${preview.url}&w=384`, alt: "", loading: "lazy", decoding: "async",
        class: blurred(preview.nsfw) ? "blur" : null, dataset: { nsfw: preview.nsfw || "none" },
        onerror: (e) => e.target.replaceWith(placeholder(item)) })
      : placeholder(item);
    const badges = [];
    if (item.update) badges.push(h("span", { class: "badge update", title: `version ${item.update} is out` }, "Update"));
    if (!item.installed) badges.push(h("span", { class: "badge missing" }, item.missing === item.resources ? "Not installed" : `${item.missing} missing`));
    if (item.upstream !== "ok") badges.push(h("span", { class: "badge gone" }, item.upstream));
    const meta = [item.kinds.map(kindLabel).join(", "), item.base_model].filter(Boolean).join(" · ");
    return h("a", { class: "card", href: `#/pack/${encodeURIComponent(item.name)}`, role: "listitem",
      dataset: { name: item.name } },
    h("div", { class: "thumb" }, thumb, badges.length ? h("div", { class: "badges" }, badges) : null),
    h("div", { class: "info" },
      h("strong", { class: "name", title: item.name }, item.name),
      h("span", { class: "meta" }, meta),
      h("span", { class: "meta" }, `${item.source} · ${bytes(item.size)}`)));
  }

  refreshBlur() {
    for (const img of this.grid.querySelectorAll("img[data-nsfw]")) img.classList.toggle("blur", blurred(img.dataset.nsfw));
  }
}

export function placeholder(item) {
  const kind = item.kinds && item.kinds[0];
  return h("div", { class: `placeholder kind-${kind || "other"}`, "aria-hidden": "true" },
    h("span", {}, (item.name || "?").slice(0, 1).toUpperCase()), h("small", {}, kindLabel(kind || "other")));
}
