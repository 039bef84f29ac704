// Reverie.Warnings: shows what a run warned about (a style image enlarged a lot, a run stopped early
// because it diverged...) in a read-only text box on the node. The node sends them as
// ui={"reverie_warnings": [...]} (nodes/host.py: shown_warnings); the box disappears when a run has none.
import { app } from "../../../scripts/app.js";
import { ComfyWidgets } from "../../../scripts/widgets.js";

const NODES = new Set(["ReverieDream", "ReverieDreamZoom", "ReverieOptimize", "ReverieDreamVideo", "ReverieStyliseVideo"]);
const NAME = "warnings";

function show(node, lines) {
  let widget = node.widgets?.find((w) => w.name === NAME);
  if (!lines.length) {
    if (widget) {
      widget.onRemove?.();
      node.widgets.splice(node.widgets.indexOf(widget), 1);
      node.setSize(node.computeSize());
    }
    return;
  }
  if (!widget) {
    widget = ComfyWidgets.STRING(node, NAME, ["STRING", { multiline: true }], app).widget;
    widget.serialize = false; // a report, not a setting: not saved in widgets_values
    if (widget.inputEl) widget.inputEl.readOnly = true;
    const [width, height] = node.computeSize(); // grow the node so the box lies inside it
    node.setSize([Math.max(node.size[0], width), Math.max(node.size[1], height)]);
  }
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
