"""Dream-family nodes called as the host calls them: under inference mode, on ComfyUI IMAGE tensors."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from tests.helpers import shared_file


@pytest.fixture(scope="module")
def nodes():
    import folder_paths
    from reverie import nodes
    return nodes, folder_paths


@pytest.fixture(scope="module")
def googlenet(nodes):
    nodes, folder_paths = nodes
    folder_paths.add_model_folder_path("cnn", str(shared_file("weights/googlenet_caffe.safetensors").parent))
    with torch.inference_mode():
        return nodes.LoadCNN.execute("googlenet_caffe", "googlenet_caffe.safetensors", "auto", "max", "zeros", "fp32")[0]


def select(nodes, cnn, text):
    with torch.inference_mode():
        return nodes[0].SelectLayers.execute(cnn, text)[0]


def run_dream(nodes, layers, image, **kw):
    args = dict(steps=3, step_size=0.02, jitter=8, normalize="mean_abs", smoothing=0.0, seed=0, tile_size=0) | kw
    with torch.inference_mode():
        return nodes[0].Dream.execute(image, layers, **args)[0]


def test_every_input_has_a_tooltip(nodes):
    """Each node's schema validates and documents every input and output."""
    for node in nodes[0].NODES:
        schema = node.GET_SCHEMA()
        assert schema.node_id.startswith("Reverie") and schema.description
        for item in [*schema.inputs, *schema.outputs]:
            assert item.tooltip, f"{schema.node_id}.{item.id} has no tooltip"


def test_dream_changes_every_batch_element_and_keeps_shape(nodes, googlenet):
    """A batch of RGB fp16 images comes back float32, same size, every element changed."""
    image = torch.rand(2, 64, 80, 3, generator=torch.Generator().manual_seed(0)).half()
    out = run_dream(nodes, select(nodes, googlenet, "inception_3b/output"), image)
    assert out.shape == (2, 64, 80, 3) and out.dtype == torch.float32
    change = (out - image.float()).abs().flatten(1).mean(1)
    assert (change > 1e-3).all()


def test_dream_keeps_alpha_and_takes_greyscale(nodes, googlenet):
    """RGBA keeps its alpha channel; a 1-channel image is dreamed as grey RGB."""
    layers = select(nodes, googlenet, "inception_3a/output")
    rgba = torch.rand(1, 48, 48, 4)
    out = run_dream(nodes, layers, rgba)
    assert out.shape == (1, 48, 48, 4) and torch.equal(out[..., 3], rgba[..., 3])
    grey = torch.rand(1, 48, 48, 1)
    assert run_dream(nodes, layers, grey).shape == (1, 48, 48, 3)


def test_dream_with_octaves_guide_and_tiles(nodes, googlenet):
    """Octaves, a guide image and tiling all run through the node."""
    layers = select(nodes, googlenet, "inception_3b/output: 1")
    with torch.inference_mode():
        pyramid = nodes[0].OctavePyramid.execute(3, 1.4, 2)[0]
    image = torch.rand(1, 96, 96, 3)
    out = run_dream(nodes, layers, image, octaves=pyramid, guide=torch.rand(1, 40, 60, 3))
    assert out.shape == image.shape and (out - image).abs().mean() > 1e-3
    large = torch.rand(1, 200, 150, 3)
    tiled = run_dream(nodes, layers, large, tile_size=128)
    assert tiled.shape == large.shape and (tiled - large).abs().mean() > 1e-3


@pytest.mark.parametrize("text, message", [
    ("inception_4c/outptu", "inception_4c/output"),
    ("", "No layers given"),
    ("inception_4c/output: 0", "non-zero"),
    ("inception 4c", "no layer 'inception 4c'. Nearest valid names: inception_4c"),
    ("inception_4c/output#600", "has 512 channels"),
])
def test_select_layers_rejects_bad_names_with_the_fix(nodes, googlenet, text, message):
    """Unknown, empty, all-zero or unreadable layer lists say what is valid."""
    with pytest.raises(ValueError, match=message):
        select(nodes, googlenet, text)


def test_select_layers_shows_the_classes_a_name_picked(nodes, googlenet):
    """The classes behind 'class#retriever' are listed in the node's ui box (web/js/warnings.js)."""
    with torch.inference_mode():
        out = nodes[0].SelectLayers.execute(googlenet, "class#retriever: 1\ninception_4c/output#3,7,10-20")
    notes = out.ui["reverie_warnings"]
    assert notes == ["class#retriever → 5 classes: flat-coated retriever (205), curly-coated retriever (206), "
                     "golden retriever (207), Labrador retriever (208), Chesapeake Bay retriever (209)"]
    assert [str(e) for e in out[0].entries] == ["loss3/classifier#205-209: 1", "inception_4c/output#3,7,10-20: 1"]


def test_dream_chooses_top_channels_per_image_and_says_which(nodes, googlenet):
    """topK channels are chosen on each image of Dream's batch and shown on the node; the Laplacian
    normalisation and the smoothing run through the node."""
    image = torch.rand(2, 64, 64, 3, generator=torch.Generator().manual_seed(2))
    image[1] = image[1] * 0.3
    layers = select(nodes, googlenet, "inception_3b/output#top4: 1, inception_3a/output#5: -0.5")
    with torch.inference_mode():
        out = nodes[0].Dream.execute(image, layers, steps=2, step_size=0.02, jitter=4, normalize="laplacian",
                                     smoothing=1.0, seed=0, tile_size=0)
    notes = out.ui["reverie_warnings"]
    assert [n.split(" → ")[0] for n in notes] == ["inception_3b/output#top4 on image 1",
                                                 "inception_3b/output#top4 on image 2"]
    assert out[0].shape == image.shape and ((out[0] - image).abs().flatten(1).mean(1) > 1e-3).all()


def test_bad_normalize_value_is_refused(nodes, googlenet):
    """ComfyUI does not check combo values sent over the API: the engine names the valid ones."""
    with pytest.raises(ValueError, match="one of 'mean_abs', 'std', 'laplacian'; got 'lap'"):
        run_dream(nodes, select(nodes, googlenet, "inception_3a/output"), torch.rand(1, 48, 48, 3), normalize="lap")


def test_too_small_image_is_a_clear_error(nodes, googlenet):
    """A 1×1 image names the minimum size instead of failing inside torch."""
    with pytest.raises(ValueError, match="at least 32"):
        run_dream(nodes, select(nodes, googlenet, "inception_3a/output"), torch.rand(1, 1, 1, 3))


def test_caffe_style_keys_fill_every_stage(nodes, tmp_path):
    """Keys written the Caffe way (`inception_4c_3x3.weight`) load into every GoogLeNet stage."""
    from reverie.engine.architectures import googlenet_caffe
    from reverie.engine.models import load_cnn
    state = {k.replace(".", "_", 1): v for k, v in googlenet_caffe.build().state_dict().items()}
    save_file(state, tmp_path / "g.safetensors")
    cnn = load_cnn("googlenet_caffe", tmp_path / "g.safetensors")
    assert cnn.depth == len(cnn.spec.stages)


def test_dream_zoom_returns_each_images_frames_in_order(nodes, googlenet):
    """Two input images, three frames each: six frames, image-major, every frame a new picture."""
    image = torch.rand(2, 48, 64, 3, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        frames = nodes[0].DreamZoom.execute(image, select(nodes, googlenet, "inception_3a/output"), 3, 1.1,
                                            2, 0.02, 4, "mean_abs", 0.0, 0, 0)[0]
    assert frames.shape == (6, 48, 64, 3)
    first_of_second = frames[3]
    assert (frames[0] - image[0]).abs().mean() < (first_of_second - image[0]).abs().mean()
    assert all((frames[i] - frames[i + 1]).abs().mean() > 1e-3 for i in (0, 1, 3, 4))


def test_load_cnn_checks_the_file_and_fingerprints_it_by_mtime(nodes, googlenet):
    """A weights file that is not in models/cnn is refused before the run; a present one is keyed by mtime."""
    load = nodes[0].LoadCNN
    message = load.validate_inputs("absent.safetensors")
    assert "absent.safetensors" in message and "models/cnn" in message
    assert load.validate_inputs("googlenet_caffe.safetensors") is True
    path = shared_file("weights/googlenet_caffe.safetensors")
    assert load.fingerprint_inputs(architecture="googlenet_caffe", weights="googlenet_caffe.safetensors",
                                   precision="auto") == path.stat().st_mtime


def test_bf16_network_dreams_with_float32_losses(nodes, googlenet):  # googlenet: registers the folder
    """precision bf16: the net runs in bfloat16, the objective reads float32, the image comes back float32."""
    with torch.inference_mode():
        cnn = nodes[0].LoadCNN.execute("googlenet_caffe", "googlenet_caffe.safetensors", "auto", "max", "zeros",
                                       "bf16")[0]
    assert cnn.dtype == torch.bfloat16
    image = torch.rand(1, 64, 64, 3)
    out = run_dream(nodes, select(nodes, cnn, "inception_3a/output"), image)
    assert out.dtype == torch.float32 and (out - image).abs().mean() > 1e-3
