"""Every file in example_workflows/ runs on the server (small image, few steps) and saves images."""
import json

import pytest
from PIL import Image

from graphs import WORKFLOWS
from run_workflow import override, run_prompt, to_api


@pytest.mark.parametrize("path", WORKFLOWS or [None], ids=lambda p: p.stem if p else "none")
def test_example_workflow_runs(path, comfy, object_info, make_image, prefix, tmp_path):
    """Converted with /object_info; LoadImage gets a 128 px image, `steps` at most 2, `size` at most 128, `frames` at most 3."""
    assert path is not None, "example_workflows/ has no .json workflow"
    prompt = to_api(json.loads(path.read_text()), object_info)
    override(prompt, {"LoadImage.image": make_image(128, 128)})
    for node in prompt.values():
        if "filename_prefix" in node["inputs"]:  # SaveImage, SaveAnimatedWEBP, ...
            node["inputs"]["filename_prefix"] = prefix
        for name, cap in (("steps", 2), ("size", 128), ("frames", 3)):
            if isinstance(node["inputs"].get(name), int):
                node["inputs"][name] = min(node["inputs"][name], cap)
    for p in run_prompt(comfy, prompt, tmp_path):
        with Image.open(p) as image:
            assert min(image.size) > 1, p
