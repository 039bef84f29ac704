"""A Dream graph queued over /prompt changes the image, keeps its size and reports progress."""
import numpy as np
from PIL import Image

from graphs import dream_graph
from run_workflow import execution_error, output_images


def test_dream_changes_pixels_and_keeps_size(comfy, object_info, default_layers, make_image, prefix, host, tmp_path):
    """96x64 in, 3 steps: same size out, pixels changed, one progress event per step."""
    name = make_image(96, 64)
    progress = []
    entry = comfy.run(dream_graph(object_info, default_layers, name, prefix, steps=3),
                      on_progress=lambda _, data: progress.append(data))
    assert execution_error(entry) is None, execution_error(entry)
    [image] = output_images(entry)
    out = np.asarray(Image.open(comfy.download(image, tmp_path)).convert("RGB"))
    before = np.asarray(Image.open(host.base / "input" / name).convert("RGB"))
    assert out.shape == before.shape == (64, 96, 3)
    assert np.abs(out.astype(float) - before).mean() > 0.5, "the dream left the image (almost) unchanged"
    assert [p["value"] for p in progress if p["node"] == "4"][-1:] == [3], progress
