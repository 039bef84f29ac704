"""A style-transfer graph queued over /prompt: the output has the requested size, and a style image far
smaller than the output comes back as a warning in the node's UI output (shown by web/js/warnings.js)."""
import numpy as np
from PIL import Image

from graphs import node
from run_workflow import execution_error, output_images


def test_style_transfer_runs_and_warns_about_a_tiny_style(comfy, object_info, make_image, prefix, tmp_path):
    content, style = make_image(96, 64), make_image(24, 24)
    prompt = {
        "1": node(object_info, "LoadImage", image=content),
        "2": node(object_info, "LoadImage", image=style),
        "3": node(object_info, "ReverieLoadCNN"),
        "4": node(object_info, "ReverieSelectLayers", cnn=["3", 0], layers="blocks.5"),
        "5": node(object_info, "ReverieSelectLayers", cnn=["3", 0], layers="stem, stage1, stage2"),
        "6": node(object_info, "ReverieContentLoss", layers=["4", 0], content=["1", 0]),
        "7": node(object_info, "ReverieStyleLoss", layers=["5", 0], style=["2", 0], objective=["6", 0]),
        "8": node(object_info, "ReverieOptimize", objective=["7", 0], size=128, steps=3),
        "9": node(object_info, "SaveImage", images=["8", 0], filename_prefix=prefix),
    }
    entry = comfy.run(prompt)
    assert execution_error(entry) is None, execution_error(entry)
    [image] = output_images(entry)
    out = Image.open(comfy.download(image, tmp_path))
    assert out.size == (128, 85)
    assert np.asarray(out).std() > 1
    warnings = entry["outputs"]["8"]["reverie_warnings"]
    assert any("enlarged" in w and "Style image 1" in w for w in warnings), warnings
