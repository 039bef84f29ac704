"""The node-tier rows of the bad-input table (tests/bad_input_cases.py): tensors no core node makes, passed to
the nodes as ComfyUI calls them; each must raise a plain ValueError with its message. Also what is not an error:
a uint8 IMAGE is read as 0..255, a non-contiguous one as it is."""
from __future__ import annotations

import pytest
import torch

from tests.bad_input_cases import CASES

NODE_CASES = [c for c in CASES if c.tier == "node"]


class NodeKit:
    """Calls the nodes under inference mode with small valid inputs, the case's bad one on top."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.cnn = self.call(nodes.LoadCNN, "vgg19", "vgg19_partial_conv1_1-conv3_4.safetensors", "auto", "max",
                             "zeros", "fp32")

    @staticmethod
    def call(node, *args, **kwargs):
        with torch.inference_mode():
            return node.execute(*args, **kwargs)[0]

    def layers(self, text: str = "relu2_1"):
        return self.call(self.nodes.SelectLayers, self.cnn, text)

    def dream(self, image: torch.Tensor | None = None, **kw) -> torch.Tensor:
        args = dict(steps=1, step_size=0.01, jitter=0, normalize="mean_abs", smoothing=0.0, seed=0, tile_size=0) | kw
        return self.call(self.nodes.Dream, torch.rand(1, 32, 32, 3) if image is None else image, self.layers(), **args)

    def content(self, content: torch.Tensor | None = None, **kw):
        content = torch.rand(1, 32, 32, 3) if content is None else content
        return self.call(self.nodes.ContentLoss, self.layers(), content, **({"weight": 1.0} | kw))

    def style(self, **kw):
        args = dict(style=torch.rand(1, 32, 32, 3), weight=10.0, statistic="gram", style_scale=1.0, blend=0.5) | kw
        return self.call(self.nodes.StyleLoss, self.layers(), **args)


@pytest.fixture(scope="module")
def kit(nodes) -> NodeKit:
    return NodeKit(nodes)


@pytest.mark.parametrize("case", NODE_CASES, ids=[c.id for c in NODE_CASES])
def test_bad_tensor_is_reported(case, kit):
    with pytest.raises(ValueError) as error:
        case.build(kit)
    assert type(error.value) is ValueError and case.expect in str(error.value), str(error.value)


def test_uint8_image_is_read_as_0_to_255(kit):
    """A uint8 IMAGE dreams like the same image as floats /255 (not as white), bit for bit."""
    pixels = torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(kit.dream(pixels), kit.dream(pixels.float() / 255))


def test_uint8_and_bool_masks_are_read_as_0_to_1(nodes):
    """A MASK of uint8 (0..255) or bool reaches the node as the float mask it means."""
    from reverie.nodes.inputs import check_inputs
    schema = nodes.StyleLoss.define_schema()
    mask = torch.tensor([[[0, 128, 255]]], dtype=torch.uint8)
    assert torch.equal(check_inputs(schema, {"mask": mask})["mask"], mask.float() / 255)
    assert torch.equal(check_inputs(schema, {"mask": mask > 0})["mask"], torch.tensor([[[0.0, 1.0, 1.0]]]))


def test_non_contiguous_image_is_read_as_it_is(kit):
    """A permuted (channels-first in memory) IMAGE dreams like its contiguous copy."""
    image = torch.rand(1, 3, 32, 32).permute(0, 2, 3, 1)
    assert not image.is_contiguous()
    assert torch.equal(kit.dream(image), kit.dream(image.contiguous()))


def test_pack_errors_reach_the_host_as_plain_types(nodes):
    """An exception class of the pack (NonFiniteLoss, a ValueError) is raised to ComfyUI as a plain ValueError
    with the same message: ComfyUI names a failure by its type's module path, the install path for a pack.
    The host's own exceptions (interrupts, out of memory) pass unchanged; the class clone ComfyUI makes for
    every run keeps one check, not two."""
    import comfy.model_management as mm
    from comfy_api.internal import shallow_clone_class
    from comfy_api.latest import io

    from reverie.engine.optimize import NonFiniteLoss
    from reverie.nodes.inputs import ReverieNode

    class Raises(ReverieNode):
        @classmethod
        def define_schema(cls) -> io.Schema:
            return io.Schema(node_id="ReverieTestRaises", inputs=[io.Float.Input("x", min=0.0, max=1.0)])

        @classmethod
        def execute(cls, x: float) -> io.NodeOutput:
            raise NonFiniteLoss("the loss became NaN", None, 1) if x < 0.5 else mm.InterruptProcessingException()

    with pytest.raises(ValueError, match="the loss became NaN") as error:
        Raises.execute(0.1)
    assert type(error.value) is ValueError and isinstance(error.value.__cause__, NonFiniteLoss)
    with pytest.raises(mm.InterruptProcessingException):
        Raises.execute(x=0.9)
    with pytest.raises(ValueError, match="The input 'x' of ReverieTestRaises must be a finite number from 0 to 1"):
        Raises.execute(float("nan"))
    assert shallow_clone_class(Raises).execute.__func__ is Raises.execute.__func__
