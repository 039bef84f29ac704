// Reverie.Layers: an "add layer" list on Select Layers, filled with the layers of the model that
// feeds it (GET /reverie/layers, served by nodes/routes.py). Picking a name appends "name: 1.0".
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const NODE = "ReverieSelectLayers";
const NAME = "add layer";
const PICK = "choose…"; // the list's resting value
const DEFAULTS = "(the model's default layers)";
const catalogues = new Map(); // architecture -> {layers, default_layers} once fetched, or a pending Promise

function architectureOf(node) {
  // Follow the cnn input (through reroutes) to the node that has an "architecture" widget.
  let current = node;
  let slot = node.findInputSlot("cnn");
  for (let hops = 0; hops < 16 && slot >= 0; hops++) {
    const source = current.getInputNode(slot);
    if (!source) return null;
    const widget = source.widgets?.find((w) => w.name === "architecture");
    if (widget) return widget.value;
    current = source;
    slot = 0;
  }
  return null;
}

function fetchCatalogue(architecture) {
  if (!catalogues.has(architecture)) {
    const url = `/reverie/layers?architecture=${encodeURIComponent(architecture)}`;
    catalogues.set(architecture, api.fetchApi(url)
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`${url}: HTTP ${r.status}`))))
      .then((data) => { catalogues.set(architecture, data); return data; })
      .catch((e) => { catalogues.delete(architecture); console.warn("Reverie.Layers:", e.message); }));
  }
  return catalogues.get(architecture);
}

function choicesFor(node) {
  // The combo's list right now; starts a fetch (and says so) when the catalogue is not here yet.
  const architecture = architectureOf(node);
  if (!architecture) return [PICK, "(connect a Load CNN node)"];
  const known = catalogues.get(architecture);
  if (!known || known instanceof Promise) {
    fetchCatalogue(architecture)?.then(() => refresh(node));
    return [PICK, "(loading layers…)"];
  }
  return [PICK, DEFAULTS, ...known.layers];
}

function refresh(node) {
  const widget = node.widgets?.find((w) => w.name === NAME);
  if (widget) widget.options.values = choicesFor(node);
}

function names(text) {
  return text.split(/[\n,]/).map((part) => part.split(":")[0].trim()).filter(Boolean);
}

function addLayers(node, entries) {
  // Append "name: weight" lines for the names not listed yet.
  const text = node.widgets.find((w) => w.name === "layers");
  const have = new Set(names(text.value ?? ""));
  const lines = entries.filter(([name]) => !have.has(name)).map(([name, weight]) => `${name}: ${weight}`);
  if (!lines.length) return;
  const current = (text.value ?? "").replace(/\s+$/, "");
  text.value = current ? `${current}\n${lines.join("\n")}` : lines.join("\n");
  text.callback?.(text.value);
}

function onPick(node, widget, value) {
  widget.value = PICK;
  const catalogue = catalogues.get(architectureOf(node));
  if (!catalogue || catalogue instanceof Promise || value === PICK) return;
  if (value === DEFAULTS) {
    addLayers(node, Object.entries(catalogue.default_layers)
      .map(([name, w]) => [name, Number.isInteger(w) ? w.toFixed(1) : String(w)]));
  } else if (catalogue.layers.includes(value)) {
    addLayers(node, [[value, "1.0"]]);
  }
  node.setDirtyCanvas(true, true);
}

app.registerExtension({
  name: "Reverie.Layers",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      const widget = this.addWidget("combo", NAME, PICK, (value) => onPick(this, widget, value),
        { values: [PICK], serialize: false }); // options.serialize: not sent in the prompt
      widget.serialize = false; // and not saved in widgets_values
      const click = widget.onClick;
      if (click) widget.onClick = (opts) => { refresh(this); return click.call(widget, opts); };
      return result;
    };

    const onConnectionsChange = nodeType.prototype.onConnectionsChange;
    nodeType.prototype.onConnectionsChange = function () {
      const result = onConnectionsChange?.apply(this, arguments);
      refresh(this);
      return result;
    };

    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const result = onConfigure?.apply(this, arguments);
      requestAnimationFrame(() => refresh(this)); // links are in place once the whole graph is loaded
      return result;
    };
  },
});
