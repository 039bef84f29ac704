"""Select Layers' grammar: weights, channel lists and ranges, topK, classes by name, and its error messages."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import save_file

from reverie.engine.classes import parse_names
from reverie.engine.features import FeatureNet
from reverie.engine.layers import parse_layers
from reverie.engine.models import load_cnn
from tests.helpers import shared_file, tiny_cnn, tiny_spec

ANIMALS = ("golden retriever", "Labrador retriever", "tabby cat", "tiger cat", "hotdog", "tench",
           "goldfish", "great white shark", "robin", "jay", "magpie", "chickadee", "water ouzel", "kite",
           "bald eagle", "vulture")  # 16 names for the tiny net's 16-channel "classifier"


@pytest.fixture
def cnn(tmp_path):
    return tiny_cnn(tmp_path)


def classifier_cnn(tmp_path, metadata: dict | None = None, text: str | None = None):
    """The tiny net with b3/conv (16 channels) as its classifier, names from metadata or a text file."""
    spec = dataclasses.replace(tiny_spec(), classifier="b3/conv")
    path = tmp_path / "tiny_places.safetensors"
    save_file(spec.build().state_dict(), path, metadata=metadata)
    if text is not None:
        (tmp_path / "tiny_places.classes.txt").write_text(text)
    return load_cnn(spec, path)


def channels(selection) -> list[tuple]:
    return [(e.layer, e.channels, e.top, e.weight) for e in selection.entries]


def test_weights_and_single_channels(cnn):
    selection = parse_layers(cnn, "b1/relu: 0.5, b2/relu#3\nb3/pool:-1e-1")
    assert [str(e) for e in selection.entries] == ["b1/relu: 0.5", "b2/relu#3: 1", "b3/pool: -0.1"]
    assert selection.layers == ["b1/relu", "b2/relu", "b3/pool"]


def test_lists_and_ranges_continue_over_commas_until_a_layer(cnn):
    """After '#', comma items are channels until one names a layer; the weight after the last item is the set's."""
    selection = parse_layers(cnn, "b2/relu#3,7,10-12: 0.5, b3/pool, b1/conv#1 , 5-6: -1\nb2/relu#0")
    assert channels(selection) == [("b2/relu", ((3, 7, 10, 11, 12),), 0, 0.5), ("b3/pool", (), 0, 1.0),
                                   ("b1/conv", ((1, 5, 6),), 0, -1.0), ("b2/relu", ((0,),), 0, 1.0)]
    assert str(selection.entries[0]) == "b2/relu#3,7,10-12: 0.5"


def test_channel_set_objective_is_the_mean_of_its_channels(cnn):
    """A set's term is the mean of its channels' means; a negative weight turns it into suppression."""
    x = torch.rand(2, 3, 32, 32)
    feats = FeatureNet(cnn, ["b2/relu"])(x)
    objective = parse_layers(cnn, "b2/relu#3,7-8: -2").dream_objective()
    expected = 2 * feats["b2/relu"][:, [3, 7, 8]].mean((1, 2, 3))
    assert torch.allclose(objective(feats, x), expected)


@pytest.mark.parametrize("text, message", [
    ("b2/relu#16", r"b2/relu#16 is out of range: 'b2/relu' has 16 channels \(0..15\)"),
    ("b2/relu#10-20", r"b2/relu#10-20 is out of range: 'b2/relu' has 16 channels"),
    ("b2/relu#3,17", r"b2/relu#17 is out of range: 'b2/relu' has 16 channels"),
    ("b2/relu#5-3", "runs backwards: write 3-5"),
    ("b2/relu#top0", "picks no channels: K of topK must be at least 1"),
    ("b2/relu#top17", "more channels than there are: 'b2/relu' has 16 channels"),
    ("b2/relu#top3,4", "give it its own entry"),
    ("b2/relu#", "Nothing follows '#'"),
    ("#3", "write its layer first"),
    ("b2/relu#dog", "class names select classes of the classifier only: Tiny test net has no classifier"),
    ("b2/relu#3, b3/poo", "If 'b3/poo' is a layer: nearest valid names b3/pool"),
    ("class#dog", "Tiny test net has no classifier layer"),
    ("b2/relu#3: heavy", "Weight 'heavy' of layer 'b2/relu' is not a number"),
])
def test_bad_entries_say_what_is_valid(cnn, text, message):
    with pytest.raises(ValueError, match=message):
        parse_layers(cnn, text)


def test_top_k_is_chosen_per_image_on_the_input(cnn):
    """topK picks, for each image, the K channels with the highest mean activation; the notes name them."""
    x = torch.rand(2, 3, 32, 32)
    x[1] = x[1].flip(-1) * 0.2
    selection = parse_layers(cnn, "b2/relu#top3: 1, b3/relu#2")
    with pytest.raises(ValueError, match="chosen on an input image"):
        selection.dream_objective()
    chosen = selection.for_image(x)
    means = FeatureNet(cnn, ["b2/relu"])(x)["b2/relu"].mean((2, 3))
    for row, image_means in zip(chosen.entries[0].channels, means):
        assert set(row) == set(image_means.topk(3).indices.tolist())
    assert len(chosen.notes) == 2 and chosen.notes[0].startswith("b2/relu#top3 on image 1 → channels ")
    assert chosen.entries[1].channels == ((2,),)
    objective = chosen.dream_objective()
    assert objective(FeatureNet(cnn, chosen.layers)(x), x).shape == (2,)


def test_imagenet_names_are_the_shared_list():
    """torchvision's category names are the shared imagenet_classes.txt, line for line."""
    from reverie.engine.classes import imagenet_names
    assert imagenet_names() == parse_names(shared_file("weights/imagenet_classes.txt").read_text())


@pytest.fixture(scope="module")
def googlenet():
    return load_cnn("googlenet_caffe", shared_file("weights/googlenet_caffe.safetensors"))


def test_classes_by_name_on_googlenet(googlenet):
    """An exact name picks one class, a part of a name every class containing it; `class` is the classifier."""
    selection = parse_layers(googlenet, "class#golden retriever: 2\nclass#dog\nloss3/classifier#Tabby, 207")
    assert channels(selection) == [
        ("loss3/classifier", ((207,),), 0, 2.0),
        ("loss3/classifier", ((153, 229, 230, 238, 239, 245, 248, 275, 537, 934),), 0, 1.0),
        ("loss3/classifier", ((207, 281),), 0, 1.0)]
    assert selection.notes[0] == "class#golden retriever → 1 class: golden retriever (207)"
    assert selection.notes[1].startswith("class#dog → 10 classes: Maltese dog (153), Old English sheepdog (229)")


def test_unknown_class_and_class_on_another_layer(googlenet):
    with pytest.raises(ValueError, match="named 'retreiver' or contains it. Closest names: .*golden retriever"):
        parse_layers(googlenet, "class#retreiver")
    with pytest.raises(ValueError, match="the classifier layer is 'loss3/classifier' \\(write class#dog\\)"):
        parse_layers(googlenet, "inception_4c/output#dog")
    with pytest.raises(ValueError, match="'inception_4c/output' has 512 channels \\(0..511\\)"):
        parse_layers(googlenet, "inception_4c/output#500-520")


def test_class_names_from_metadata(tmp_path):
    cnn = classifier_cnn(tmp_path, metadata={"reverie.classes": "\n".join(ANIMALS)})
    selection = parse_layers(cnn, "class#retriever")
    assert selection.entries[0].channels == ((0, 1),)
    assert selection.notes == ("class#retriever → 2 classes: golden retriever (0), Labrador retriever (1)",)
    assert "metadata" in cnn.class_names.source


def test_class_names_from_a_text_file_beside_the_weights(tmp_path):
    """Places' published format ('/a/airfield 0') reads as plain names."""
    text = "\n".join(f"/{n[0].lower()}/{n.replace(' ', '_')} {i}" for i, n in enumerate(ANIMALS))
    cnn = classifier_cnn(tmp_path, text=text)
    assert cnn.class_names.names == ANIMALS and cnn.class_names.source == "tiny_places.classes.txt"
    assert parse_layers(cnn, "class#great white shark").entries[0].channels == ((7,),)


def test_names_that_do_not_fit_the_classifier_are_refused(tmp_path):
    with pytest.raises(ValueError, match="lists 15 class names but the classifier of tiny_places.safetensors has 16"):
        classifier_cnn(tmp_path, metadata={"reverie.classes": "\n".join(ANIMALS[:15])})


def test_a_classifier_without_names_takes_indices_with_a_warning(tmp_path):
    cnn = classifier_cnn(tmp_path)
    assert cnn.classes == 16 and cnn.class_names is None
    selection = parse_layers(cnn, "class#3-4")
    assert selection.entries[0].channels == ((3, 4),)
    assert "has 16 classes but no names" in selection.notes[-1]
    assert "tiny_places.classes.txt" in selection.notes[-1]
    with pytest.raises(ValueError, match="has no class names, so 'shark' cannot be looked up"):
        parse_layers(cnn, "class#shark")
