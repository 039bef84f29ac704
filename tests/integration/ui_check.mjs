// Drives the ComfyUI frontend headlessly and reports what it saw as JSON (tests/integration/test_frontend.py
// makes the assertions). Env: COMFY_URL, WORKFLOWS (JSON list of UI-format files; the first is queued),
// STYLE_WORKFLOW (a UI-format style transfer, queued twice to see the second run come from the cache),
// SMALL_IMAGE (input file to queue them with), SHOT (screenshot path), RESULT (JSON path),
// BROWSER_DIR (holds node_modules/playwright-core), CHROME.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { execSync } from "node:child_process";

const env = process.env;
const { chromium } = createRequire(path.join(env.BROWSER_DIR, "package.json"))("playwright-core");
// noise of a healthy 0.3.75 boot with no network, frontends 1.32.9 and 1.58.1 (the old backend has no /api/jobs)
const BENIGN = [/user\.css/, /api\/userdata/, /api\.comfy\.org/, /ERR_NAME_NOT_RESOLVED/, /status of 404/,
                /reading 'id'/, /Jobs API|Failed to fetch queue/];
const OURS = /\/extensions\/reverie\/|Reverie\.|internal module/; // a message caused by our files
const result = { console: [], ours: [] };

async function settings(values) {
  await fetch(env.COMFY_URL + "/api/settings", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(values) });
}

// Every console warning or error whose stack passes through our files, recorded in the page itself
function recordOurs() {
  window.__reverieConsole = [];
  for (const level of ["warn", "error"]) {
    const original = console[level].bind(console);
    console[level] = (...args) => {
      const stack = new Error().stack ?? "";
      if (stack.includes("/extensions/reverie/")) window.__reverieConsole.push(`${level}: ${args.join(" ")}`);
      original(...args);
    };
  }
}

// the first-run templates dialog would cover the canvas; start with the LiteGraph canvas renderer
await settings({ "Comfy.TutorialCompleted": true, "Comfy.VueNodes.Enabled": false });
const browser = await chromium.launch({
  executablePath: env.CHROME || execSync("command -v chromium").toString().trim(), headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
let page;
try {
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.addInitScript(recordOurs);
  page.on("console", (m) => {
    if (m.type() !== "error" && m.type() !== "warning") return;
    const text = m.text().split("\n")[0];
    const where = m.location()?.url ?? "";
    if (BENIGN.some((re) => re.test(text) || re.test(where))) return;
    if (m.type() === "error") result.console.push(text);
    if (OURS.test(text) || OURS.test(where)) result.ours.push(`${m.type()}: ${text} (${m.location()?.url})`);
  });
  page.on("pageerror", (e) => result.console.push("pageerror: " + e.message));
  await page.goto(env.COMFY_URL + "/", { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => window.app?.graph && window.LiteGraph?.registered_node_types?.SaveImage,
    null, { timeout: 120000 });
  Object.assign(result, await page.evaluate(() => ({
    version: window.__COMFYUI_FRONTEND_VERSION__,
    registered: Object.keys(LiteGraph.registered_node_types).filter((k) => k.startsWith("Reverie")),
    extensions: app.extensions.map((e) => e.name),
  })));

  // each workflow's API prompt as the Run button would send it, and which of its nodes overlap; the first
  // one stays loaded
  result.prompts = {};
  result.overlaps = {};
  for (const file of JSON.parse(env.WORKFLOWS).reverse()) {
    const workflow = JSON.parse(fs.readFileSync(file, "utf8"));
    const name = path.basename(file);
    const seen = await page.evaluate(async (wf) => {
      await app.loadGraphData(wf);
      const title = LiteGraph.NODE_TITLE_HEIGHT; // a node's pos is below its title bar
      const boxes = app.graph.nodes.map((n) => [n.id, n.type, [n.pos[0], n.pos[1] - title, n.size[0], n.size[1] + title]]);
      const overlaps = [];
      for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
          const [, a, [ax, ay, aw, ah]] = boxes[i];
          const [, b, [bx, by, bw, bh]] = boxes[j];
          if (ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah) overlaps.push(`${a} / ${b}`);
        }
      }
      return { prompt: (await app.graphToPrompt()).output, overlaps };
    }, workflow);
    result.prompts[name] = seen.prompt;
    result.overlaps[name] = seen.overlaps;
  }

  // the template browser's thumbnails: /api/workflow_templates/<pack>/<name>.jpg, as the frontend builds them
  result.thumbnails = await page.evaluate(async () => {
    const packs = await (await app.api.fetchApi("/workflow_templates")).json();
    const sizes = {};
    for (const name of packs.reverie ?? []) {
      const image = new Image();
      image.src = app.api.apiURL(`/workflow_templates/reverie/${name}.jpg`);
      sizes[name] = await image.decode().then(() => [image.naturalWidth, image.naturalHeight], () => null);
    }
    return sizes;
  });

  // the "add layer" list of Select Layers fills from /reverie/layers; picking a layer appends it
  result.layers = await page.evaluate(async (original) => {
    const values = (w) => (typeof w.options.values === "function" ? w.options.values(w, w.node) : w.options.values);
    async function listOf(node) { // the list as it reads once the catalogue has arrived
      const pick = node.widgets.find((w) => w.name === "add layer");
      for (let i = 0; i < 100 && values(pick).length < 3; i++) await new Promise((r) => setTimeout(r, 100));
      return [...values(pick)];
    }
    const node = app.graph.nodes.find((n) => n.type === "ReverieSelectLayers");
    if (!node) return null;
    const pick = node.widgets.find((w) => w.name === "add layer");
    const text = node.widgets.find((w) => w.name === "layers");
    if (!pick) return { widgets: node.widgets.map((w) => w.name) };
    const list = await listOf(node);
    const before = text.value;
    const picked = list.at(-1);
    pick.callback(picked);
    const after = text.value;
    text.value = before;
    const report = { values: list, picked, before, after, widgets: node.widgets.map((w) => w.name) };

    // inside subgraphs: Select Layers alone in one (its model comes in through the subgraph's input), then
    // Load CNN alone in one (the model comes out through the subgraph's output)
    if (typeof app.graph.convertToSubgraph === "function") {
      const wrapped = app.graph.convertToSubgraph(new Set([node]));
      const inner = wrapped.subgraph.nodes.find((n) => n.type === "ReverieSelectLayers");
      report.insideSubgraph = inner ? await listOf(inner) : null;
      await app.loadGraphData(structuredClone(original));
      const cnn = app.graph.nodes.find((n) => n.type === "ReverieLoadCNN");
      app.graph.convertToSubgraph(new Set([cnn]));
      const outside = app.graph.nodes.find((n) => n.type === "ReverieSelectLayers");
      report.modelInSubgraph = await listOf(outside);
      await app.loadGraphData(structuredClone(original));
    }
    return report;
  }, JSON.parse(fs.readFileSync(JSON.parse(env.WORKFLOWS)[0], "utf8")));

  // Reverie.Warnings shows a run's warnings on Optimize, never as a prompt input nor in the saved workflow,
  // and removes them when the next run has none
  result.warnings = await page.evaluate(async () => {
    const node = LiteGraph.createNode("ReverieOptimize");
    app.graph.add(node);
    node.onExecuted({ reverie_warnings: ["Style image 1 is enlarged 4.0×"] });
    const widget = node.widgets.find((w) => w.name === "warnings");
    const shown = widget?.value ?? null;
    const readOnly = widget?.element?.readOnly ?? null;
    const inPrompt = Object.keys((await app.graphToPrompt()).output[node.id]?.inputs ?? {}).includes("warnings");
    const saved = node.serialize().widgets_values;
    const inWorkflow = Array.isArray(saved) ? saved.includes(shown) : Object.keys(saved ?? {}).includes("warnings");
    node.onExecuted({ reverie_warnings: [] });
    const after = node.widgets.some((w) => w.name === "warnings");
    app.graph.remove(node);
    return { shown, readOnly, inPrompt, inWorkflow, removed: !after };
  });

  // queue it the way the Run button does, on a small image so it is quick
  const queue = (small) => page.evaluate(async (small) => {
    for (const n of app.graph.nodes.filter((n) => n.type === "LoadImage")) {
      if (small) n.widgets.find((w) => w.name === "image").value = small;
    }
    const ran = [];
    let cached = [];
    const onExecuting = (e) => { const id = e.detail?.node ?? e.detail; if (id != null) ran.push(String(id)); };
    const onCached = (e) => { cached = e.detail.nodes.map(String); };
    app.api.addEventListener("executing", onExecuting);
    app.api.addEventListener("execution_cached", onCached);
    const done = new Promise((resolve) => {
      for (const ev of ["execution_success", "execution_error", "execution_interrupted"]) {
        app.api.addEventListener(ev, (e) => resolve(ev === "execution_success" ? ev : ev + " " + JSON.stringify(e.detail).slice(0, 500)),
          { once: true });
      }
    });
    await app.queuePrompt(0, 1);
    const status = await Promise.race([done, new Promise((r) => setTimeout(() => r("timeout"), 300000))]);
    app.api.removeEventListener("executing", onExecuting);
    app.api.removeEventListener("execution_cached", onCached);
    return { status, ran, cached };
  }, small);
  result.queued = (await queue(env.SMALL_IMAGE || null)).status;
  await page.waitForTimeout(1000); // let the Save Image node draw its output
  await page.screenshot({ path: env.SHOT });

  // a style transfer run twice: the warnings box that the first run may add changes nothing the server
  // sees, so the second run is served from ComfyUI's cache
  if (env.STYLE_WORKFLOW) {
    const workflow = JSON.parse(fs.readFileSync(env.STYLE_WORKFLOW, "utf8"));
    await page.evaluate(async (wf) => {
      await app.loadGraphData(wf);
      for (const n of app.graph.nodes) {
        for (const [name, value] of [["steps", 2], ["size", 64]]) {
          const w = n.widgets?.find((w) => w.name === name);
          if (w) w.value = value;
        }
      }
    }, workflow);
    const first = await queue(env.SMALL_IMAGE || null);
    await page.evaluate(() => { // make sure the box is there for the second run
      const node = app.graph.nodes.find((n) => n.type === "ReverieOptimize");
      if (!node.widgets.some((w) => w.name === "warnings")) node.onExecuted({ reverie_warnings: ["a warning"] });
    });
    const second = await queue(null);
    result.cache = { first, second, nodes: await page.evaluate(() => (app.graph.nodes.length)) };
  }

  // the Vue "Nodes 2.0" renderer: open the list on the page as a user would, pick a layer
  await page.evaluate(async () => {
    await app.extensionManager.setting.set("Comfy.VueNodes.Enabled", true);
  });
  const basic = JSON.parse(fs.readFileSync(JSON.parse(env.WORKFLOWS)[0], "utf8"));
  const id = await page.evaluate(async (wf) => {
    await app.loadGraphData(wf);
    return app.graph.nodes.find((n) => n.type === "ReverieSelectLayers").id;
  }, basic);
  await page.waitForTimeout(1500);
  const widget = page.locator(`[data-node-id="${id}"] [data-widget-name="add layer"]`);
  if (await widget.count()) {
    const trigger = widget.locator('[role="combobox"]').first();
    await trigger.click();
    await page.waitForTimeout(500);
    const options = page.locator('[role="option"]');
    const listed = await options.allTextContents();
    const target = listed.map((t) => t.trim()).find((t) => t === "stage3") ?? listed.at(-1)?.trim();
    if (target) await options.filter({ hasText: new RegExp(`^\\s*${target.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*$`) }).first().click();
    await page.waitForTimeout(300);
    const text = await page.evaluate((id) => app.graph.getNodeById(id).widgets.find((w) => w.name === "layers").value, id);
    result.vue = { listed: listed.map((t) => t.trim()), picked: target, text };
  } else {
    result.vue = { listed: [], missing: "no add layer widget on the Vue node" };
  }
  await page.screenshot({ path: env.SHOT.replace(/\.png$/, "_vue.png") });

  // every example as the Vue renderer lays it out (its nodes are taller than the canvas's): which overlap
  result.vueOverlaps = {};
  for (const file of JSON.parse(env.WORKFLOWS)) {
    await page.evaluate(async (wf) => { await app.loadGraphData(wf); }, JSON.parse(fs.readFileSync(file, "utf8")));
    await page.waitForTimeout(1000);
    result.vueOverlaps[path.basename(file)] = await page.evaluate(() => {
      const boxes = [...document.querySelectorAll("[data-node-id]")].map((e) => [e.getAttribute("data-node-id"),
        e.getBoundingClientRect()]).filter(([, r]) => r.height > 0);
      const title = (id) => app.graph.getNodeById(Number(id))?.type ?? id;
      const pairs = [];
      for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
          const [a, r] = boxes[i];
          const [b, q] = boxes[j];
          const x = Math.min(r.right, q.right) - Math.max(r.left, q.left);
          const y = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top);
          if (x > 1 && y > 1) pairs.push(`${title(a)} / ${title(b)} (${Math.round(x)}×${Math.round(y)} px on the page)`);
        }
      }
      return pairs;
    });
  }
} finally {
  if (page) result.ours.push(...(await page.evaluate(() => window.__reverieConsole ?? []).catch(() => [])));
  await browser.close();
  await settings({ "Comfy.VueNodes.Enabled": false });
  result.console = result.console.filter((e) => !BENIGN.some((re) => re.test(e)));
  fs.writeFileSync(env.RESULT, JSON.stringify(result, null, 1));
}
