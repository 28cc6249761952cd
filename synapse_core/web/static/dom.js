// Small DOM helpers: every text goes in as a text node (nothing from the store or a source is
// ever parsed as HTML, except a description through sanitize()).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") el.style.cssText = value; // CSSOM: allowed by the page's CSP, a style attribute is not
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const UNITS = ["B", "KB", "MB", "GB", "TB"];

export function bytes(n) {
  if (n === null || n === undefined) return "?";
  let i = 0;
  let v = n;
  while (v >= 1000 && i < UNITS.length - 1) { v /= 1000; i += 1; }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[i]}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

export async function copyText(text) {
  // navigator.clipboard needs a secure context (loopback is one); elsewhere the old way
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = h("textarea", { class: "offscreen", "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

const ALLOWED = new Set(["P", "BR", "B", "STRONG", "I", "EM", "U", "UL", "OL", "LI", "H1", "H2", "H3", "H4",
  "CODE", "PRE", "BLOCKQUOTE", "A", "SPAN", "DIV", "HR"]);

// A description from a source is HTML written by strangers: rebuilt from allowed elements
// and text only (DOMParser runs no script), links only to http(s).
export function sanitize(html) {
  // handler attributes are renamed first: Chromium checks them against the CSP even in an inert
  // document (and logs a violation); none is ever copied to the page
  const inert = (html || "").replace(/\son[a-z]+\s*=/gi, " data-dropped=");
  const doc = new DOMParser().parseFromString(inert, "text/html");
  const out = document.createDocumentFragment();
  const walk = (node, into) => {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) into.append(document.createTextNode(child.textContent));
      else if (child.nodeType === Node.ELEMENT_NODE) {
        if (["SCRIPT", "STYLE", "IFRAME", "OBJECT", "TEMPLATE"].includes(child.tagName)) continue;
        if (!ALLOWED.has(child.tagName)) { walk(child, into); continue; }
        const el = document.createElement(child.tagName);
        if (child.tagName === "A") {
          const href = child.getAttribute("href") || "";
          if (/^https?:\/\//i.test(href)) { el.href = href; el.rel = "noopener noreferrer"; el.target = "_blank"; }
        }
        walk(child, el);
        into.append(el);
      }
    }
  };
  walk(doc.body, out);
  return out;
}

export function kindLabel(kind) {
  return { checkpoint: "Checkpoint", lora: "LoRA", embedding: "Embedding", vae: "VAE", controlnet: "ControlNet",
    upscaler: "Upscaler", hypernetwork: "Hypernetwork", text_encoder: "Text encoder",
    diffusion_model: "Diffusion model", clip_vision: "CLIP vision", ipadapter: "IP-Adapter",
    motion_module: "Motion module", other: "Other" }[kind] || kind;
}
