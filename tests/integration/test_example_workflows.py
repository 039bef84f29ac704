"""Every file in example_workflows/ runs on the server (small image, few steps) and saves images or videos."""
import json

import av
import pytest
from PIL import Image

from graphs import WORKFLOWS
from run_workflow import override, run_prompt, to_api

VIDEOS = {".mp4", ".webm", ".mov", ".mkv"}  # Save Video / Save WEBM outputs
# tile_size is left as it is: 0, or a size at least twice the layers' halo (512 in the 4096 example, where
# EfficientNet-Lite0 stem … stage4 need 192), is valid at any output size; at 128 px it is one tile.
CAPS = (("steps", 2), ("refresh_steps", 1), ("size", 128), ("frames", 3))


def frame_sizes(path) -> list[tuple[int, int]]:
    """(width, height) of each frame of a saved image or video."""
    if path.suffix in VIDEOS:
        with av.open(str(path)) as video:
            return [(frame.width, frame.height) for frame in video.decode(video=0)]
    with Image.open(path) as image:
        return [image.size]


@pytest.mark.parametrize("path", WORKFLOWS or [None], ids=lambda p: p.stem if p else "none")
def test_example_workflow_runs(path, comfy, object_info, make_image, prefix, tmp_path):
    """Converted with /object_info; LoadImage gets a 128 px image, `steps` at most 2, `refresh_steps` at most 1,
    `size` at most 128, `frames` at most 3."""
    assert path is not None, "example_workflows/ has no .json workflow"
    prompt = to_api(json.loads(path.read_text()), object_info)
    override(prompt, {"LoadImage.image": make_image(128, 128)})
    for node in prompt.values():
        if "filename_prefix" in node["inputs"]:  # SaveImage, SaveAnimatedWEBP, SaveVideo, ...
            node["inputs"]["filename_prefix"] = prefix
        for name, cap in CAPS:
            if isinstance(node["inputs"].get(name), int):
                node["inputs"][name] = min(node["inputs"][name], cap)
    for p in run_prompt(comfy, prompt, tmp_path):
        sizes = frame_sizes(p)
        assert sizes and min(min(s) for s in sizes) > 1, (p, sizes)
