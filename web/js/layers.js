// Reverie.Layers: an "add layer" list on Select Layers, filled with the layers of the model that
// feeds it (GET /reverie/layers, served by nodes/routes.py). Picking a name appends "name: 1.0".
// Public frontend API only: node.addWidget with a function for the combo's values (read each time the
// list opens, by the LiteGraph canvas and by the Vue "Nodes 2.0" renderer alike) and the graph's links,
// followed through reroutes and into and out of subgraphs.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const NODE = "ReverieSelectLayers";
const NAME = "add layer";
const PICK = "choose…"; // the list's resting value
const DEFAULTS = "(the model's default layers)";
const MAX_HOPS = 32;
const catalogues = new Map(); // architecture -> {layers, default_layers} once fetched, or a pending Promise

function linkInto(node, slot) {
  // The link that ends at input `slot` of `node`, read from its graph's link table.
  for (const link of node.graph?.links?.values?.() ?? []) {
    if (link.target_id === node.id && link.target_slot === slot) return link;
  }
  return null;
}

function subgraphInstances(graph) {
  // The subgraph nodes (in the root graph or in other subgraphs) whose inside is `graph`.
  const root = graph.rootGraph ?? graph;
  const graphs = [root, ...(root.subgraphs?.values?.() ?? [])];
  return graphs.flatMap((g) => g.nodes.filter((n) => n.isSubgraphNode?.() && n.subgraph === graph));
}

function architectureFrom(node, slot, hops = 0) {
  // Follow input `slot` of `node` upstream to a node with an "architecture" widget; its value, or null.
  if (hops > MAX_HOPS) return null;
  const link = linkInto(node, slot);
  if (!link) return null;
  const graph = node.graph;
  if (graph.inputNode && link.origin_id === graph.inputNode.id) { // a subgraph's input: continue outside
    for (const outer of subgraphInstances(graph)) {
      const found = architectureFrom(outer, link.origin_slot, hops + 1);
      if (found) return found;
    }
    return null;
  }
  const source = graph.getNodeById(link.origin_id);
  if (!source) return null;
  const widget = source.widgets?.find((w) => w.name === "architecture");
  if (widget) return widget.value;
  if (source.isSubgraphNode?.()) { // a subgraph's output: continue inside, from its output node
    const inner = source.subgraph;
    const innerLink = [...inner.links.values()].find(
      (l) => l.target_id === inner.outputNode?.id && l.target_slot === link.origin_slot);
    if (!innerLink) return null;
    const innerSource = inner.getNodeById(innerLink.origin_id);
    return innerSource?.widgets?.find((w) => w.name === "architecture")?.value
      ?? (innerSource ? architectureFrom(innerSource, 0, hops + 1) : null);
  }
  return architectureFrom(source, 0, hops + 1); // a reroute or another pass-through node
}

function architectureOf(node) {
  const slot = node.findInputSlot("cnn");
  return slot >= 0 ? architectureFrom(node, slot) : null;
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
  // The list's entries right now; starts a fetch (and says so) when the catalogue is not here yet.
  const architecture = architectureOf(node);
  if (!architecture) return [PICK, "(connect a Load CNN node)"];
  const known = catalogues.get(architecture);
  if (!known || known instanceof Promise) {
    fetchCatalogue(architecture);
    return [PICK, "(loading layers…)"];
  }
  return [PICK, DEFAULTS, ...known.layers];
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
        { values: () => choicesFor(this), serialize: false }); // options.serialize: not sent in the prompt
      widget.serialize = false; // and not saved in widgets_values
      return result;
    };

    const onConnectionsChange = nodeType.prototype.onConnectionsChange;
    nodeType.prototype.onConnectionsChange = function () {
      const result = onConnectionsChange?.apply(this, arguments);
      choicesFor(this); // fetch the new model's layers before the list is opened
      return result;
    };

    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const result = onConfigure?.apply(this, arguments);
      requestAnimationFrame(() => choicesFor(this)); // links are in place once the whole graph is loaded
      return result;
    };
  },
});
