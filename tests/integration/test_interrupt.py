"""POST /interrupt stops a long dream mid-way, inside a step; the next prompt runs normally, and the cached CNN
gives the bytes a fresh server gives."""
import json

import numpy as np
from PIL import Image

from graphs import dream_graph
from host import Host
from run_workflow import Comfy, execution_error, output_images


def saved(comfy: Comfy, prompt: dict, folder) -> Image.Image:
    """Run a graph that saves one image; that image, opened."""
    entry = comfy.run(prompt)
    assert execution_error(entry) is None, execution_error(entry)
    [image] = output_images(entry)
    return Image.open(comfy.download(image, folder))


def pixels(image: Image.Image) -> bytes:
    return np.asarray(image.convert("RGB")).tobytes()


def test_interrupt_then_next_prompt_runs_as_on_a_fresh_server(comfy, host, object_info, default_layers, make_image,
                                                              prefix, tmp_path):
    """A 10,000-step dream is interrupted after its second step; the same small dream before and after it, and on
    a freshly booted server, gives the same pixels."""
    small = make_image(64, 64)
    graph = lambda name: dream_graph(object_info, default_layers, small, name, steps=2, seed=11)
    before = pixels(saved(comfy, graph(prefix + "_before"), tmp_path))
    sent = []

    def interrupt_at_step_2(prompt_id, data):
        if data["node"] == "4" and data["value"] >= 2 and not sent:
            sent.append(data["value"])
            comfy.interrupt(prompt_id)

    long = dream_graph(object_info, default_layers, make_image(256, 256), prefix + "_long", steps=10000)
    entry = comfy.run(long, timeout=600, on_progress=interrupt_at_step_2)
    assert sent, "the dream never reported progress"
    assert entry["status"]["status_str"] == "error"
    assert "interrupted" in execution_error(entry)
    after = pixels(saved(comfy, graph(prefix + "_after"), tmp_path))
    with Host(host.root, host.base).start(tmp_path / "fresh.log") as fresh:
        on_fresh = pixels(saved(Comfy(fresh.url), graph(prefix + "_fresh"), tmp_path))
    assert after == before == on_fresh


def test_seed_reproduces_the_pixels_and_the_settings_are_in_the_png(comfy, object_info, default_layers, make_image,
                                                                    prefix, tmp_path):
    """Same seed, same pixels (another prompt ran between, so nothing came from the cache); another seed, other
    pixels; the saved PNG's `prompt` text holds the Dream node's seed and settings, as for core nodes."""
    name = make_image(64, 64)
    graph = lambda seed, tag: dream_graph(object_info, default_layers, name, f"{prefix}_{tag}", steps=2, seed=seed,
                                          jitter=16, step_size=0.03)
    first = saved(comfy, graph(3, "a"), tmp_path)
    other = saved(comfy, graph(4, "b"), tmp_path)
    again = saved(comfy, graph(3, "c"), tmp_path)
    assert pixels(first) == pixels(again) != pixels(other)
    dream = json.loads(first.info["prompt"])["4"]
    assert dream["class_type"] == "ReverieDream"
    assert {k: dream["inputs"][k] for k in ("seed", "steps", "jitter", "step_size")} == \
        {"seed": 3, "steps": 2, "jitter": 16, "step_size": 0.03}
