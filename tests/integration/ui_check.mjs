// Drives the ComfyUI frontend headlessly and reports what it saw as JSON (tests/integration/test_frontend.py
// makes the assertions). Env: COMFY_URL, WORKFLOWS (JSON list of UI-format files; the first is queued),
// SMALL_IMAGE (input file to queue it with),
// SHOT (screenshot path), RESULT (JSON path), BROWSER_DIR (holds node_modules/playwright-core), CHROME.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { execSync } from "node:child_process";

const env = process.env;
const { chromium } = createRequire(path.join(env.BROWSER_DIR, "package.json"))("playwright-core");
// noise of a healthy 0.3.75 + frontend 1.32.9 boot with no network
const BENIGN = [/user\.css/, /api\/userdata/, /api\.comfy\.org/, /ERR_NAME_NOT_RESOLVED/, /status of 404/,
                /reading 'id'/, /Jobs API|Failed to fetch queue/];
const result = { console: [] };

// the first-run templates dialog would cover the canvas
await fetch(env.COMFY_URL + "/api/settings", { method: "POST", headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ "Comfy.TutorialCompleted": true }) });
const browser = await chromium.launch({
  executablePath: env.CHROME || execSync("command -v chromium").toString().trim(), headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") result.console.push(m.text().split("\n")[0]); });
  page.on("pageerror", (e) => result.console.push("pageerror: " + e.message));
  await page.goto(env.COMFY_URL + "/", { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => window.app?.graph && window.LiteGraph?.registered_node_types?.SaveImage,
    null, { timeout: 120000 });
  Object.assign(result, await page.evaluate(() => ({
    registered: Object.keys(LiteGraph.registered_node_types).filter((k) => k.startsWith("Reverie")),
    extensions: app.extensions.map((e) => e.name),
  })));

  // each workflow's API prompt as the Run button would send it; the first one stays loaded
  result.prompts = {};
  for (const file of JSON.parse(env.WORKFLOWS).reverse()) {
    const workflow = JSON.parse(fs.readFileSync(file, "utf8"));
    await page.evaluate(async (wf) => { await app.loadGraphData(wf); }, workflow);
    result.prompts[path.basename(file)] = await page.evaluate(async () => (await app.graphToPrompt()).output);
  }

  // the "add layer" list of Select Layers fills from /reverie/layers; picking a layer appends it
  result.layers = await page.evaluate(async () => {
    const node = app.graph.nodes.find((n) => n.type === "ReverieSelectLayers");
    if (!node) return null;
    const pick = node.widgets.find((w) => w.name === "add layer");
    const text = node.widgets.find((w) => w.name === "layers");
    if (!pick) return { widgets: node.widgets.map((w) => w.name) };
    for (let i = 0; i < 100 && pick.options.values.length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    const values = [...pick.options.values];
    const before = text.value;
    const picked = values.at(-1);
    pick.callback(picked);
    const after = text.value;
    text.value = before;
    return { values, picked, before, after, widgets: node.widgets.map((w) => w.name) };
  });

  // Reverie.Warnings shows a run's warnings on Optimize and removes them when the next run has none
  result.warnings = await page.evaluate(() => {
    const node = LiteGraph.createNode("ReverieOptimize");
    app.graph.add(node);
    node.onExecuted({ reverie_warnings: ["Style image 1 is enlarged 4.0×"] });
    const shown = node.widgets.find((w) => w.name === "warnings")?.value ?? null;
    node.onExecuted({ reverie_warnings: [] });
    const after = node.widgets.some((w) => w.name === "warnings");
    app.graph.remove(node);
    return { shown, removed: !after };
  });

  // queue it the way the Run button does, on a small image so it is quick
  result.queued = await page.evaluate(async (small) => {
    for (const n of app.graph.nodes.filter((n) => n.type === "LoadImage")) {
      if (small) n.widgets.find((w) => w.name === "image").value = small;
    }
    const done = new Promise((resolve) => {
      for (const ev of ["execution_success", "execution_error", "execution_interrupted"]) {
        app.api.addEventListener(ev, (e) => resolve(ev === "execution_success" ? ev : ev + " " + JSON.stringify(e.detail).slice(0, 500)));
      }
    });
    await app.queuePrompt(0, 1);
    return Promise.race([done, new Promise((r) => setTimeout(() => r("timeout"), 300000))]);
  }, env.SMALL_IMAGE || null);
  await page.waitForTimeout(1000); // let the Save Image node draw its output
  await page.screenshot({ path: env.SHOT });
} finally {
  await browser.close();
  result.console = result.console.filter((e) => !BENIGN.some((re) => re.test(e)));
  fs.writeFileSync(env.RESULT, JSON.stringify(result, null, 1));
}
