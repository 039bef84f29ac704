"""The nodes' runtime guards as the host runs them: the CNN in the host's model manager, the memory guard
(tiles or a refusal before anything large is allocated), divergence shown as a warning, determinism."""
from __future__ import annotations

import time

import psutil
import pytest
import torch

GB = 1024 ** 3


def run(node, *args, **kwargs):
    with torch.inference_mode():
        return node.execute(*args, **kwargs)


@pytest.fixture(scope="module")
def host(nodes):
    import comfy.model_management as mm
    from reverie.nodes import host
    return mm, host


@pytest.fixture(scope="module")
def googlenet(nodes):
    return run(nodes.LoadCNN, "googlenet_caffe", "googlenet_caffe.safetensors", "auto", "max", "zeros", "fp32")[0]


@pytest.fixture(scope="module")
def vgg(nodes):
    return run(nodes.LoadCNN, "vgg19", "vgg19_partial_conv1_1-conv3_4.safetensors", "auto", "max", "replicate",
               "fp32")[0]


def layers(nodes, cnn, text):
    return run(nodes.SelectLayers, cnn, text)[0]


def dream(nodes, selection, image, **kw):
    args = dict(steps=2, step_size=0.02, jitter=4, normalize="mean_abs", smoothing=0.0, seed=0, tile_size=0) | kw
    return run(nodes.Dream, image, selection, **args)


def style_objective(nodes, vgg, content):
    objective = run(nodes.ContentLoss, layers(nodes, vgg, "relu2_1"), content, 1.0)[0]
    return run(nodes.StyleLoss, layers(nodes, vgg, "relu1_1, relu2_1"), torch.rand(1, 40, 40, 3), 10.0, "gram", 1.0,
               0.5, objective=objective)[0]


def optimize(nodes, objective, **kw):
    args = dict(init="content", size=64, optimizer="adam", learning_rate=0.0, steps=3, tv_weight=0.0, ema=0.0,
                colour="none", seed=0, tile_size=0, tile_statistics="exact") | kw
    return run(nodes.Optimize, objective, **args)


def test_the_cnn_is_a_host_model_loaded_for_a_run_and_freed_with_the_others(nodes, host, googlenet, monkeypatch):
    """Load CNN's output carries its ModelPatcher (newer hosts' cache evicts old model outputs first); during a
    run it is among the host's loaded models; after unload_all_models its weights are on the offload device, and
    the next run loads it again and works."""
    mm, reverie_host = host
    patcher = reverie_host.patcher(googlenet)
    assert patcher.model is googlenet.module and reverie_host.patcher(googlenet) is patcher
    assert googlenet.patcher is patcher  # Load CNN's output carries it, as ComfyUI's CLIP and VAE do theirs
    seen = []
    interrupt = mm.throw_exception_if_processing_interrupted
    monkeypatch.setattr(mm, "throw_exception_if_processing_interrupted",
                        lambda: seen.append(patcher in mm.loaded_models()) or interrupt())
    selection = layers(nodes, googlenet, "inception_3a/output")
    image = torch.rand(1, 48, 48, 3)
    first = dream(nodes, selection, image)[0]
    assert seen and all(seen)
    mm.unload_all_models()
    assert patcher not in mm.loaded_models()
    assert all(p.device == patcher.offload_device for p in googlenet.module.parameters())
    seen.clear()
    assert torch.equal(dream(nodes, selection, image)[0], first) and all(seen)


@pytest.fixture
def asked(host, monkeypatch) -> list[int]:
    """The memory_required of every load_models_gpu call the pack makes (the models still load)."""
    mm, _ = host
    calls = []
    load = mm.load_models_gpu
    monkeypatch.setattr(mm, "load_models_gpu", lambda models, memory_required=0, **kw:
                        calls.append(memory_required) or load(models, memory_required=memory_required, **kw))
    return calls


def test_the_memory_asked_of_the_host_grows_with_pixels_and_tile(nodes, asked, googlenet, monkeypatch):
    """What the pack asks the host to make room for follows the run: more pixels, more; a smaller tile, less
    (not the untiled figure when the run tiles)."""
    import reverie.nodes.dream as dream_module
    monkeypatch.setattr(dream_module, "dream", lambda net, objective, x, *args: x)  # the request, not the dream
    selection = layers(nodes, googlenet, "inception_3a/output")

    def need(image, tile):
        asked.clear()
        dream(nodes, selection, image, steps=1, tile_size=tile)
        return max(asked)

    small, large = torch.rand(1, 64, 64, 3), torch.rand(1, 384, 384, 3)
    assert need(small, 0) < need(large, 0) / 10
    assert need(large, 128) < need(large, 192) < need(large, 0)


def test_a_style_run_asks_for_content_targets_at_the_content_layers_only(nodes, asked, vgg, monkeypatch):
    """Optimize keeps full-size float16 targets at the Content Loss's layers, not at the Style Loss's: with the
    same layers in the net, moving the content loss from relu2_1 (128 channels at ¼ of the pixels) to relu1_1
    (64 channels at every pixel) asks the host for (64 - 32) × 2 bytes more per output pixel."""
    import reverie.nodes.optimize as optimize_module
    from reverie.engine.transfer import TransferReport
    monkeypatch.setattr(optimize_module, "transfer", lambda net, objective, x, *args: (x, TransferReport([])))
    content = torch.rand(1, 48, 64, 3)

    def need(content_layer: str) -> int:
        objective = run(nodes.ContentLoss, layers(nodes, vgg, content_layer), content, 1.0)[0]
        objective = run(nodes.StyleLoss, layers(nodes, vgg, "relu1_1, relu2_1"), torch.rand(1, 40, 40, 3), 10.0,
                        "gram", 1.0, 0.5, objective=objective)[0]
        asked.clear()
        optimize(nodes, objective, size=256)
        return max(asked)

    assert need("relu1_1") - need("relu2_1") == pytest.approx((64 - 32) * 2 * 192 * 256, rel=1e-6)


def rss() -> int:
    return psutil.Process().memory_info().rss


def test_optimize_at_8192_on_a_small_budget_is_refused_before_allocating(nodes, host, vgg, monkeypatch):
    """Size 8192 with 1 GB free: refused at once with the estimate, the budget and the fix; memory stays low."""
    mm, _ = host
    monkeypatch.setattr(mm, "get_free_memory", lambda *a, **k: 1 * GB)
    objective = style_objective(nodes, vgg, torch.rand(1, 48, 64, 3))
    before, start = rss(), time.monotonic()
    with pytest.raises(ValueError, match=r"Adam at 8192×6144 needs about \d+\.\d GB, but 0\.9 GB .* available.* "
                                         r"at most about \d+ px on the longer side"):
        optimize(nodes, objective, size=8192)
    assert time.monotonic() - start < 60 and rss() - before < 0.3 * GB


class Stop(Exception):
    """What the stand-in engine raises once it has seen what a node gives it."""


@pytest.fixture
def engine(monkeypatch) -> list[tuple[torch.device, int]]:
    """Stands in for the engine's dream and transfer behind the nodes: records the device of the image each is
    given and the settings' tile, then raises Stop (nothing large is made)."""
    import reverie.nodes.dream as dream_module
    import reverie.nodes.optimize as optimize_module
    called = []

    def stand_in(net, objective, x, settings, *args):
        called.append((x.device, settings.tile))
        raise Stop

    monkeypatch.setattr(dream_module, "dream", stand_in)
    monkeypatch.setattr(optimize_module, "transfer", stand_in)
    return called


def test_dream_at_6000x4000_tiles_or_is_refused_before_allocating(nodes, host, googlenet, engine, monkeypatch):
    """tile_size 0 on a 6000×4000 image: with 8 GB free the run is tiled (the engine is called with a tile,
    and stopped there); with 1 GB it is refused before the image is copied."""
    mm, _ = host
    selection = layers(nodes, googlenet, "inception_4c/output")
    image = torch.zeros(1, 4000, 6000, 3)
    for free, limit in ((8 * GB, 1.0 * GB), (1 * GB, 0.2 * GB)):
        monkeypatch.setattr(mm, "get_free_memory", lambda *a, free=free, **k: free)
        before, start = rss(), time.monotonic()
        with pytest.raises(Stop if free > GB else ValueError) as stopped:
            dream(nodes, selection, image)
        assert time.monotonic() - start < 60 and rss() - before < limit
    assert len(engine) == 1 and 512 <= engine[0][1] < 4000
    assert "Dream at 6000×4000 needs about" in str(stopped.value) and "image-sized buffers alone" in str(stopped.value)


def test_a_print_too_large_for_the_gpu_keeps_its_buffers_in_host_memory(nodes, host, vgg, googlenet, engine,
                                                                        monkeypatch):
    """A 'GPU' with 1 GB free (the meta device stands in) and 64 GB of host memory: Optimize at 8192 and Dream on
    6000×4000 are not refused; the engine gets the images in host memory and a tile whose work fits the GPU."""
    mm, reverie_host = host
    gpu = torch.device("meta")
    monkeypatch.setattr(reverie_host, "load", lambda cnn, memory_required=0: gpu)
    monkeypatch.setattr(mm, "get_free_memory", lambda device=None, **k: 64 * GB if device == reverie_host.HOST else GB)
    with pytest.raises(Stop):
        optimize(nodes, style_objective(nodes, vgg, torch.rand(1, 48, 64, 3)), size=8192)
    with pytest.raises(Stop):
        dream(nodes, layers(nodes, googlenet, "inception_4c/output"), torch.zeros(1, 4000, 6000, 3))
    assert [device for device, _ in engine] == [reverie_host.HOST] * 2
    assert all(256 <= tile < 6000 for _, tile in engine), engine


def test_a_node_that_kept_the_image_in_host_memory_says_so(nodes, host, vgg, monkeypatch):
    """The 'GPU' of the test above with 0.25 GB free: Optimize at 4096 keeps the image in host memory and says so on
    the node, with the tile it used; the same run on a device with room says nothing of the kind."""
    mm, reverie_host = host
    import reverie.nodes.optimize as optimize_module
    from reverie.engine.transfer import TransferReport
    monkeypatch.setattr(optimize_module, "transfer",
                        lambda net, objective, x, settings, *a: (x, TransferReport([tuple(x.shape[-2:])])))
    objective = style_objective(nodes, vgg, torch.rand(1, 48, 64, 3))
    for device, free in ((torch.device("meta"), 0.25 * GB), (reverie_host.HOST, 64 * GB)):
        monkeypatch.setattr(reverie_host, "load", lambda cnn, memory_required=0, device=device: device)
        monkeypatch.setattr(mm, "get_free_memory",
                            lambda at=None, free=free, **k: 64 * GB if at == reverie_host.HOST else free)
        notes = optimize(nodes, objective, size=4096).ui["reverie_warnings"]
        kept = [n for n in notes if "kept in host memory" in n]
        assert (len(kept) == 1 and "It worked on tiles of" in kept[0]) == (device.type == "meta"), notes


def test_a_host_that_counts_reclaimable_memory_is_asked_through_the_models_patcher(nodes, host, vgg, engine,
                                                                                   monkeypatch):
    """Newer hosts' ModelPatcher.get_free_memory adds memory their Dynamic VRAM gives back on demand: where it
    exists the memory guard asks it (here it says 64 GB where the device has 1 GB, so 8192 px is not refused)."""
    mm, reverie_host = host
    objective = style_objective(nodes, vgg, torch.rand(1, 48, 64, 3))
    monkeypatch.setattr(mm, "get_free_memory", lambda *a, **k: 1 * GB)
    monkeypatch.setattr(type(reverie_host.patcher(vgg)), "get_free_memory", lambda self, device: 64 * GB, raising=False)
    with pytest.raises(Stop):
        optimize(nodes, objective, size=8192)
    assert len(engine) == 1 and engine[0][1] >= 4096  # with the device's 1 GB: refused (the 8192 test above)


def test_a_diverging_optimize_returns_an_image_and_shows_why(nodes, vgg):
    """Adam at learning rate 10 (bounded L-BFGS backtracks instead): an image comes back, with the divergence
    among the node's warnings."""
    content = torch.rand(1, 48, 64, 3, generator=torch.Generator().manual_seed(1))
    out = optimize(nodes, style_objective(nodes, vgg, content), optimizer="adam", learning_rate=10.0, steps=30)
    assert out[0].shape == (1, 48, 64, 3)
    assert any("diverged" in w for w in out.ui["reverie_warnings"]), out.ui


def test_same_seed_same_bytes_other_seed_other_bytes(nodes, googlenet):
    """Dream on the CPU: a seed (of the jitter) reproduces the bytes, another changes them (Optimize's noise
    init: test_style_nodes)."""
    selection = layers(nodes, googlenet, "inception_3a/output")
    image = torch.rand(1, 48, 48, 3, generator=torch.Generator().manual_seed(2))
    a, b, c = (dream(nodes, selection, image, jitter=8, seed=s)[0] for s in (5, 5, 6))
    assert torch.equal(a, b) and not torch.equal(a, c)
