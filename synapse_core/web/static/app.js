// The page's entry: a hash router over the sections (Library, Pack, Fetch, Switch, Health).
import { showFetch } from "./fetch.js";
import { showHealth } from "./health.js";
import { showLibrary } from "./library.js";
import { showPack } from "./pack.js";
import { showUis } from "./uis.js";
import { setUpDrop } from "./workflows.js";

const main = document.getElementById("main");

function parse() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  return { path, params: new URLSearchParams(query || "") };
}

let previous = null;

async function route() {
  const { path, params } = parse();
  const [, section, arg] = path.split("/");
  delete document.body.dataset.ready;
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = (link.dataset.nav === "library" && (section === "" || section === "pack")) || link.dataset.nav === section;
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  const changedSection = previous !== section;
  previous = section;
  if (section === "pack" && arg) await showPack(main, decodeURIComponent(arg));
  else if (section === "fetch") await showFetch(main, params);
  else if (section === "uis") await showUis(main);
  else if (section === "health") await showHealth(main);
  else await showLibrary(main, params);
  if (changedSection && section !== "") {
    window.scrollTo(0, 0);
    main.focus({ preventScroll: true });
  }
}

window.addEventListener("hashchange", () => route());
setUpDrop();
route();
