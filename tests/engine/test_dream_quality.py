"""What the DeepDream variants are for, measured on the BVLC GoogLeNet and the shared photos: class dreams make
the classifier see the class, guides pull towards the guide's features, Laplacian normalisation paints coarser
structure than mean-abs at equal steps."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.dream import DreamSettings, dream
from reverie.engine.features import FeatureNet
from reverie.engine.layers import parse_layers
from reverie.engine.models import load_cnn
from reverie.engine.objectives import ActivationL2
from tests.helpers import photo, shared_file

DOG_CLASSES = range(151, 269)  # ImageNet's dog breeds, Chihuahua (151) … Mexican hairless (268)
LAYER = "inception_4c/output"


@pytest.fixture(scope="module")
def googlenet():
    return load_cnn("googlenet_caffe", shared_file("weights/googlenet_caffe.safetensors"))


def low_frequency_share(delta: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Per image, the share of the energy of `delta` (mean removed) at spatial frequencies below `cutoff`
    cycles per pixel in both directions."""
    power = torch.fft.fft2(delta - delta.mean((-2, -1), keepdim=True)).abs().pow(2).sum(1)
    fy = torch.fft.fftfreq(delta.shape[-2]).abs().view(-1, 1)
    fx = torch.fft.fftfreq(delta.shape[-1]).abs().view(1, -1)
    low = torch.maximum(fy, fx) < cutoff
    return power[:, low].sum(1) / power.flatten(1).sum(1)


def test_dreaming_golden_retriever_on_the_cat_makes_a_dog_top_1(googlenet):
    """The cat photo is classified as a cat; after 6 steps of 'class#golden retriever' its top-1 class is a dog."""
    x = photo("chelsea.png", (128, 86))
    selection = parse_layers(googlenet, "class#golden retriever")
    net = FeatureNet(googlenet, selection.layers)
    with torch.no_grad():
        before = net(x)["loss3/classifier"].argmax(1).item()
    out = dream(net, selection.dream_objective(), x, DreamSettings(steps=6, step_size=0.02, jitter=8))
    with torch.no_grad():
        after = net(out)["loss3/classifier"].argmax(1).item()
    assert before in (281, 282, 283, 284, 285) and after in DOG_CLASSES, (before, after)


def test_guided_dreaming_moves_towards_the_guide(googlenet):
    """The cosine similarity of the cat's mean inception_4c features to the dog photo's rises more with the dog as
    guide than without one (unguided dreaming amplifies what the cat already shows)."""
    x, guide = photo("chelsea.png", (112, 75)), photo("dog.jpg", (112, 84))
    selection = parse_layers(googlenet, LAYER)
    net = FeatureNet(googlenet, [LAYER])
    with torch.no_grad():
        guide_feats = net(guide)

    def similarity(image: torch.Tensor) -> float:
        with torch.no_grad():
            a = net(image)[LAYER].mean((2, 3))
        return torch.nn.functional.cosine_similarity(a, guide_feats[LAYER].mean((2, 3))).item()

    settings = DreamSettings(steps=5, step_size=0.02, jitter=8)
    guided = dream(net, selection.guided_objective(guide_feats), x, settings)
    unguided = dream(net, selection.dream_objective(), x, settings)
    start = similarity(x)
    assert similarity(guided) - start > 0.05 and similarity(guided) - start > similarity(unguided) - start


def test_laplacian_normalisation_paints_coarser_structure(googlenet):
    """At equal steps (each moving pixels by the step size on average), the change that Laplacian normalisation
    makes has more of its energy below 1/16 cycle per pixel than the mean-abs change."""
    x = photo("chelsea.png", (128, 86))
    net = FeatureNet(googlenet, [LAYER])
    objective = ActivationL2(LAYER)
    shares = {}
    for normalize in ("mean_abs", "laplacian"):
        out = dream(net, objective, x, DreamSettings(steps=6, step_size=0.02, jitter=8, normalize=normalize))
        shares[normalize] = low_frequency_share(out - x, 1 / 16).item()
    assert shares["laplacian"] > 1.5 * shares["mean_abs"], shares
