"""The web page in a real browser (Debian's headless Chromium driven by Playwright) against
``synapse serve`` on loopback, over a store built from the Civitai stand-in and local files.

Each page writes a screenshot to build/screenshots/ (the README's copies come from there).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from synapse_civitai.fake_server import FakeFile
from synapse_core.models import PackLock, Runtime

pytestmark = pytest.mark.slow


def ready(page: Any, what: str) -> None:
    page.wait_for_selector(f"body[data-ready='{what}']")


def cards(page: Any) -> list[str]:
    return page.eval_on_selector_all(".grid a.card", "els => els.map(e => e.dataset.name)")


def expect_cards(page: Any, names: list[str]) -> None:
    """Wait until the grid shows exactly these packs, in this order."""
    try:
        page.wait_for_function(
            "names => JSON.stringify([...document.querySelectorAll('.grid a.card')].map(e => e.dataset.name)) === names",
            arg=json.dumps(names, separators=(",", ":")),
            polling=100,
        )
    except Exception as exc:
        raise AssertionError(f"the grid shows {cards(page)}, not {names}") from exc


def active_target(root: Path, ui: str) -> str:
    return os.readlink(root / "data" / "views" / ui / "active")


def stacks(root: Path) -> dict[str, list[str]]:
    runtime = Runtime.model_validate_json((root / "data" / "runtime.json").read_bytes())
    return {ui: r.stack for ui, r in runtime.ui.items()}


# -- the library -----------------------------------------------------------------------------------------------------


def test_library_browses_filters_sorts_and_blurs(shared_site, open_page, screenshot) -> None:
    site, _, _ = shared_site
    page = open_page(site.url)
    ready(page, "library")
    everything = [
        "InkWash",
        "NeonAlley",
        "PaperLanternStyle",
        "pixel_art",
        "sketch_lines",
        "VelvetPortrait",
        "watercolor_wash",
    ]
    assert cards(page) == everything
    assert page.inner_text(".count") == "7 packs"
    # thumbnails: real images at 384 px made by the server; local packs show a placeholder
    neon = page.locator("a.card[data-name='NeonAlley'] img")
    assert neon.evaluate("img => img.complete && img.naturalWidth") == 384
    assert page.locator("a.card[data-name='pixel_art'] .placeholder").count() == 1
    # badges: the update found by check-updates, the pack whose file is missing
    assert page.locator("a.card[data-name='PaperLanternStyle'] .badge.update").count() == 1
    assert page.locator("a.card[data-name='VelvetPortrait'] .badge.missing").inner_text() == "Not installed"
    # the explicit preview is blurred at the default level, and shown when the level allows it
    velvet = page.locator("a.card[data-name='VelvetPortrait'] img")
    assert "blur" in velvet.get_attribute("class")
    assert "blur" not in (neon.get_attribute("class") or "")
    screenshot(page, "library")
    page.select_option("select[name=nsfw]", "explicit")
    assert "blur" not in (velvet.get_attribute("class") or "")
    page.select_option("select[name=nsfw]", "soft")

    # text search looks into trigger words, file names and creators too
    for text, expected in (
        ("rain-soaked", ["NeonAlley"]),
        ("velvet_portrait.safetensors", ["VelvetPortrait"]),
        ("sumi", ["InkWash"]),
        ("lantern style", ["PaperLanternStyle"]),
    ):
        page.fill("input[name=q]", text)
        expect_cards(page, expected)
    page.fill("input[name=q]", "")
    expect_cards(page, everything)

    def choose(name: str, value: str, expected: list[str]) -> None:
        page.select_option(f"select[name={name}]", value)
        expect_cards(page, expected)

    choose("kind", "embedding", ["InkWash"])
    choose("kind", "", everything)
    choose("base_model", "SDXL 1.0", ["NeonAlley"])
    choose("base_model", "", everything)
    choose("installed", "false", ["VelvetPortrait"])
    choose("source", "local", [])
    assert page.inner_text(".empty") == "No pack matches these filters."
    choose("installed", "", ["pixel_art", "sketch_lines", "watercolor_wash"])
    choose("sort", "-name", ["watercolor_wash", "sketch_lines", "pixel_art"])
    choose(
        "source",
        "",
        ["watercolor_wash", "VelvetPortrait", "sketch_lines", "pixel_art", "PaperLanternStyle", "NeonAlley", "InkWash"],
    )
    choose("tag", "style", ["PaperLanternStyle", "InkWash"])
    choose("updates", "true", ["PaperLanternStyle"])
    # the filters are in the address: a reload shows the same
    page.reload()
    ready(page, "library")
    assert cards(page) == ["PaperLanternStyle"]


def test_thousands_of_packs_keep_the_dom_small(big_site, open_page) -> None:
    """Only the rows near the viewport exist; scrolling to the end fetches and shows the last card."""
    site, count = big_site
    page = open_page(site.url)
    ready(page, "library")
    assert page.inner_text(".count") == f"{count} packs"
    shown = page.locator(".grid .card").count()
    assert 0 < shown < 100, shown
    loaded = page.evaluate(
        "() => performance.getEntriesByType('resource').filter(r => r.name.includes('w=384')).length"
    )
    assert loaded < 100, loaded
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    last = f"bulk_{count - 1:05d}"
    page.wait_for_selector(f"a.card[data-name='{last}'] img")
    assert page.locator(".grid .card").count() < 100


def test_pack_page_shows_everything_and_copies_trigger_words(shared_site, open_page, screenshot) -> None:
    site, _, store = shared_site
    page = open_page(site.url)
    ready(page, "library")
    page.click("a.card[data-name='NeonAlley']")
    ready(page, "pack")
    assert page.url.endswith("#/pack/NeonAlley")
    assert page.inner_text("h1") == "NeonAlley"
    assert "SDXL 1.0" in page.inner_text(".pack-head .meta") and "night_owl" in page.inner_text(".pack-head .meta")
    # the description is the source's HTML, without its script or handlers
    assert page.inner_text(".description b") == "city"
    assert page.evaluate(
        "() => window.pwned === undefined && !document.querySelector('.description img, .description script')"
    )
    # files with size and hash; where each UI sees the file
    lock = store.show("NeonAlley").lock.resources["main"]
    row = page.locator("section:has(#files) tbody tr")
    assert "neon_alley_v1.safetensors" in row.inner_text() and "64.0 KB" in row.inner_text()
    assert row.locator("button.hash").get_attribute("title") == lock.sha256
    comfy = page.locator("section:has(#exp) tr[data-ui='comfyui']")
    assert "models/loras/neon_alley_v1.safetensors" in comfy.inner_text()
    screenshot(page, "pack", full_page=True)
    # two previews; one opens large
    assert page.locator(".gallery .preview").count() == 2
    page.click(".gallery .preview >> nth=0")
    assert (
        page.locator("dialog.lightbox img").evaluate(
            "img => new Promise(r => img.complete ? r(img.naturalWidth) : img.onload = () => r(img.naturalWidth))"
        )
        == 512
    )
    page.keyboard.press("Escape")
    assert page.locator("dialog.lightbox").count() == 0

    page.click("button[aria-label='Copy rain-soaked street']")
    assert page.evaluate("() => navigator.clipboard.readText()") == "rain-soaked street"
    page.click("text=Copy all")
    assert page.evaluate("() => navigator.clipboard.readText()") == "neonalley, rain-soaked street"


def test_keyboard_reaches_a_pack_and_phone_width_reads(shared_site, open_page, screenshot) -> None:
    site, _, _ = shared_site
    page = open_page(site.url, width=390, height=844)
    ready(page, "library")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "library-phone")
    # Tab from the top: skip link, the sections, the filters, then the first card
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.classList.contains('card')"):
            break
    else:
        raise AssertionError("no pack card is reachable with Tab")
    name = page.evaluate("() => document.activeElement.dataset.name")
    page.keyboard.press("Enter")
    ready(page, "pack")
    assert page.inner_text("h1") == name
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "pack-phone")


def test_dark_theme_follows_the_system(shared_site, browser) -> None:
    site, _, _ = shared_site
    colors = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)
        page = context.new_page()
        page.goto(site.url)
        ready(page, "library")
        colors[scheme] = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        context.close()
    assert colors["light"] != colors["dark"]
    assert colors["dark"] == "rgb(18, 18, 22)"


# -- switching -------------------------------------------------------------------------------------------------------


def test_use_and_back_change_the_views_on_disk_as_the_cli_does(site, open_page, screenshot, synapse_cli) -> None:
    server, _, store = site
    root = store.layout.root
    page = open_page(f"{server.url}#/pack/NeonAlley")
    ready(page, "pack")
    for ui in ("a1111", "forge", "sdnext"):
        page.uncheck(f"fieldset.ui-choice input[value={ui}]")
    page.click("button:text-is('Use')")
    page.wait_for_selector("fieldset.ui-choice label:has(input[value=comfyui]) .badge.active")
    assert active_target(root, "comfyui") == "profiles/work__NeonAlley"
    assert active_target(root, "forge") == "profiles/global"
    assert stacks(root)["comfyui"] == ["global", "work__NeonAlley"]
    status = json.loads(
        synapse_cli("status", "--json", root=root, env={"SYNAPSE_LOAD_PLUGINS": "a1111,comfyui,forge,sdnext"}).stdout
    )
    assert {u["ui"]: u["active"] for u in status["uis"]}["comfyui"] == "work__NeonAlley"
    view = root / "data" / "views" / "comfyui" / "active" / "models" / "loras" / "neon_alley_v1.safetensors"
    assert view.resolve() == store.blobs.path(store.show("NeonAlley").lock.resources["main"].sha256)

    page.goto(f"{server.url}#/uis")
    ready(page, "uis")
    comfy = page.locator(".ui-card[data-ui=comfyui]")
    assert comfy.locator(".stack li[aria-current=true]").inner_text().startswith("work__NeonAlley")
    screenshot(page, "switch")
    comfy.locator("button:text-is('Back')").click()
    page.wait_for_selector(".ui-card[data-ui=comfyui] .stack li[aria-current=true]:has-text('global')")
    assert active_target(root, "comfyui") == "profiles/global"
    assert stacks(root)["comfyui"] == ["global"]
    assert page.locator(".ui-card[data-ui=comfyui] button:text-is('Back')").is_disabled()


# -- fetching --------------------------------------------------------------------------------------------------------


def test_import_a_url_shows_progress_until_done(site, open_page, screenshot) -> None:
    server, fake, store = site
    fake.add_model(9100, name="Slow Harbor", type="Checkpoint", creator="dock")
    fake.add_version(
        9100, 9101, name="v1", files=[FakeFile(91011, "slow_harbor.safetensors", size=3_000_000, primary=True)]
    )
    fake.inject(r"^/model/", server="cdn", slow_bytes_per_sec=1_500_000, times=None)
    page = open_page(f"{server.url}#/fetch")
    ready(page, "fetch")
    page.fill("input[name=ref]", "https://civitai.com/models/9100")
    page.click("button:text-is('Import')")
    job = page.locator(".job").first
    # live progress: bytes of the total, the speed and the time left, while it runs
    lines = []
    try:
        page.wait_for_function(
            "() => /of 3\\.0 MB · [0-9.]+ [KM]B\\/s · .* left/.test(document.querySelector('.job .job-line')?.textContent || '')",
            polling=50,
        )
    except Exception as exc:
        lines.append(page.inner_text(".job"))
        raise AssertionError(lines) from exc
    screenshot(page, "fetch")
    job.locator(".job-state[data-state=done]").wait_for(timeout=30_000)
    assert job.locator("progress").evaluate("p => p.value === p.max")
    job.locator("a:text-is('Open SlowHarbor')").click()
    ready(page, "pack")
    assert page.inner_text("h1") == "SlowHarbor"
    assert store.show("SlowHarbor").resources[0].installed


def test_a_failed_import_says_why(site, open_page) -> None:
    server, _, _ = site
    page = open_page(f"{server.url}#/fetch")
    ready(page, "fetch")
    page.fill("input[name=ref]", "https://civitai.com/models/999999")
    page.click("button:text-is('Import')")
    page.locator(".job .job-state[data-state=failed]").wait_for()
    assert re.search(r"999999", page.inner_text(".job .error"))


def test_remote_search_cards_import(site, open_page) -> None:
    server, fake, store = site
    fake.add_model(9200, name="Harbor Fog", type="LORA", tags=["weather"], creator="dock")
    fake.add_version(
        9200, 9201, name="v1", files=[FakeFile(92011, "harbor_fog.safetensors", size=20_000, primary=True)]
    )
    page = open_page(f"{server.url}#/fetch")
    ready(page, "fetch")
    page.fill("input[name=remote-q]", "harbor fog")
    page.click("button:text-is('Search')")
    hit = page.locator(".hit:has-text('Harbor Fog')")
    hit.wait_for()
    assert "dock" in hit.inner_text() and "civitai:" in hit.inner_text()
    hit.locator("button:text-is('Import')").click()
    page.locator(".job .job-state[data-state=done]").wait_for(timeout=30_000)
    assert "HarborFog" in [p.name for p in store.list_packs()]


def test_an_update_with_two_candidates_asks_in_a_dialog(site, open_page, screenshot) -> None:
    server, fake, store = site
    fake.add_version(
        8001,
        8103,
        name="v3.0",
        base_model="SD 1.5",  # the pack's base: another would be held back (issue 11)
        files=[
            FakeFile(81031, "paper_lantern_v3.safetensors", size=200_000, primary=True),
            FakeFile(81032, "paper_lantern_v3_alt.safetensors", size=210_000),
        ],
    )
    page = open_page(f"{server.url}#/fetch")
    ready(page, "fetch")
    page.click("button[name=check-updates]")
    update = page.locator(".update[data-pack=PaperLanternStyle]")
    update.wait_for()
    assert "choose one of 2 files" in update.inner_text()
    update.locator("button:text-is('Apply')").click()
    dialog = page.locator("dialog.choose")
    dialog.wait_for()
    assert (
        dialog.locator("label.candidate").all_inner_texts()[1].startswith(" paper_lantern_v3_alt.safetensors")
        or "paper_lantern_v3_alt" in dialog.inner_text()
    )
    screenshot(page, "update-choice")
    dialog.locator("input[value='PaperLanternStyle:main=81032']").check()
    dialog.locator("button:text-is('Update')").click()
    page.locator(".job .job-state[data-state=done]").first.wait_for(timeout=30_000)
    lock = PackLock.model_validate_json(store.layout.lock_file_of("PaperLanternStyle").read_bytes())
    assert lock.resources["main"].file_id == "81032"
    assert store.show("PaperLanternStyle").resources[0].installed


def test_install_missing_and_health(site, open_page, screenshot) -> None:
    server, _, store = site
    page = open_page(f"{server.url}#/health")
    ready(page, "health")
    assert page.locator("[data-problems='0'][data-notices='1']").count() == 1, "a pack not downloaded is a notice"
    assert "saved" in page.inner_text("section:has(#dsk)")
    assert page.locator("section:has(#plg) tr:has-text('civitai')").count() == 1
    screenshot(page, "health", full_page=True)
    page.click("button:text-is('Install VelvetPortrait')")
    page.wait_for_selector("[data-problems='0'][data-notices='0']", timeout=30_000)
    assert store.show("VelvetPortrait").resources[0].installed


# -- safety ----------------------------------------------------------------------------------------------------------


def test_a_cross_site_form_cannot_change_the_store(site, browser) -> None:
    """A page on another origin posts a form (text/plain with a JSON-looking body, and a plain
    urlencoded one) at the API: both are refused and runtime.json does not change."""
    server, _, store = site
    root = store.layout.root
    before = (root / "data" / "runtime.json").read_bytes()
    target = f"{server.url}api/profiles/use"
    attacker = f"""<!doctype html><html><body>
      <form id=plain method=POST action="{target}" enctype="text/plain">
        <input name='{{"pack": "NeonAlley", "x": "' value='"}}'></form>
      <form id=url method=POST action="{target}"><input name=pack value=NeonAlley></form>
    </body></html>"""
    context = browser.new_context()
    page = context.new_page()
    page.route(
        "http://attacker.test/**", lambda route: route.fulfill(status=200, content_type="text/html", body=attacker)
    )
    for form in ("plain", "url"):
        page.goto("http://attacker.test/")
        with page.expect_response(target) as answer:
            page.evaluate(f"document.getElementById('{form}').submit()")
        assert answer.value.status == 403, answer.value.text()
        assert "cross-origin" in answer.value.json()["error"]["message"]
    # and fetch() without a preflight (no-cors): the answer is opaque, the change refused
    page.goto("http://attacker.test/")
    page.evaluate(
        f"fetch('{target}', {{method: 'POST', mode: 'no-cors', body: JSON.stringify({{pack: 'NeonAlley'}})}})"
        ".catch(() => null)"
    )
    page.wait_for_timeout(300)
    context.close()
    assert (root / "data" / "runtime.json").read_bytes() == before
    assert active_target(root, "comfyui") == "profiles/global"
    # the same request from the page's own origin, but as a form's content type: refused too (415)
    forged = httpx.post(
        target,
        content='{"pack": "NeonAlley"}',
        headers={"Content-Type": "text/plain", "Origin": server.url.rstrip("/")},
    )
    assert forged.status_code == 415


def test_beyond_loopback_the_page_asks_for_the_token(tmp_path: Path, open_page, running_site) -> None:
    with running_site(tmp_path, SYNAPSE_API_TOKEN="s3cret-token") as (server, _, _):
        assert httpx.get(f"{server.url}api/library").status_code == 401
        page = open_page(server.url)
        page.wait_for_selector("dialog#login[open]")
        page.fill("dialog#login input[name=token]", "wrong")
        page.click("dialog#login button[type=submit]")
        page.wait_for_selector("dialog#login .error:not([hidden])")
        page.fill("dialog#login input[name=token]", "s3cret-token")
        page.click("dialog#login button[type=submit]")
        ready(page, "library")
        # images carry the session cookie: the thumbnails load
        assert page.locator("a.card[data-name='NeonAlley'] img").evaluate("img => img.naturalWidth") == 384
        cookie = page.context.cookies()[0]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and "s3cret-token" not in cookie["value"]
