// Reverie.Warnings: shows what a run warned about (a style image enlarged a lot, a run stopped early
// because it diverged...) or chose (the classes a name matched, the topK channels) in a read-only text box
// on the node. The node sends them as
// ui={"reverie_warnings": [...]} (nodes/host.py: shown_warnings); the box disappears when a run has none.
// Public frontend API only: node.addDOMWidget / node.removeWidget. The box is a report, not an input:
// options.serialize = false keeps it out of the prompt (so an unchanged graph stays cached on the server)
// and widget.serialize = false keeps it out of the saved workflow.
import { app } from "../../../scripts/app.js";

const NODES = new Set(["ReverieSelectLayers", "ReverieDream", "ReverieDreamZoom", "ReverieOptimize", "ReverieDreamVideo",
  "ReverieStyliseVideo"]);
const NAME = "warnings";
const HEIGHT = 72; // px of the box

function addBox(node) {
  const box = document.createElement("textarea");
  box.readOnly = true;
  box.className = "comfy-multiline-input";
  box.setAttribute("aria-label", "Reverie warnings");
  Object.assign(box.style, { width: "100%", height: "100%", boxSizing: "border-box", resize: "none" });
  const widget = node.addDOMWidget(NAME, "reverie_warnings", box, {
    serialize: false,
    getValue: () => box.value,
    setValue: (text) => { box.value = text; },
    getMinHeight: () => HEIGHT,
  });
  widget.serialize = false;
  const [width, height] = node.computeSize(); // grow the node so the box lies inside it
  node.setSize([Math.max(node.size[0], width), Math.max(node.size[1], height)]);
  return widget;
}

function show(node, lines) {
  let widget = node.widgets?.find((w) => w.name === NAME);
  if (!lines.length) {
    if (widget) {
      node.removeWidget(widget);
      node.setSize(node.computeSize());
    }
    return;
  }
  widget ??= addBox(node);
  widget.value = lines.join("\n\n");
  node.setDirtyCanvas(true, true);
}

app.registerExtension({
  name: "Reverie.Warnings",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!NODES.has(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      const result = onExecuted?.apply(this, arguments);
      show(this, message?.reverie_warnings ?? []);
      return result;
    };
  },
});
