"""The bad-input table: the one list behind docs/bad_input.md and the tests that check each of its rows.

Each case names the node, what the user gave and an excerpt of the message they get. `build` makes the
case: for tier "server" it gets a `graphs.PromptKit` and returns an API prompt that the real server must
refuse (tests/integration/test_bad_input.py); for tier "node" it gets a `NodeKit` of
tests/nodes/test_bad_input_nodes.py and calls the node, which must raise. Regenerate the doc with
`python -m tests.bad_input_cases > docs/bad_input.md` from the repository root
(tests/test_bad_input_doc.py fails while it is stale).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

NAN = float("nan")
INF = float("inf")
DOC = "docs/bad_input.md"


@dataclass(frozen=True)
class Case:
    node: str  # display name of the node whose input is bad
    given: str  # what the user gave, in words
    expect: str  # an excerpt of the message (exact text)
    build: Callable[[Any], Any]
    tier: str = "server"

    @property
    def id(self) -> str:
        return f"{self.node}: {self.given}"


def _nan_pixels(shape: tuple[int, ...], count: int, value: float = NAN) -> torch.Tensor:
    x = torch.rand(shape)
    x.view(-1)[:count] = value  # the first `count` values: channels of the first pixels
    return x


CASES: list[Case] = [
    # Load CNN: combo values are not checked by ComfyUI for API prompts; the weights combo is.
    Case("Load CNN", "precision 'fp64'",
         "The input 'precision' of Load CNN must be one of 'auto', 'fp32', 'bf16', 'fp16'; got 'fp64'",
         lambda k: k.dream(layers=k.layers(cnn={"precision": "fp64"}))),
    Case("Load CNN", "architecture 'alexnet'", "architecture 'alexnet' is unknown; valid: efficientnet_lite0",
         lambda k: k.dream(layers=k.layers(cnn={"architecture": "alexnet"}))),
    Case("Load CNN", "pooling 'min'", "The input 'pooling' of Load CNN must be one of 'max', 'average'; got 'min'",
         lambda k: k.dream(layers=k.layers(cnn={"pooling": "min"}))),
    Case("Load CNN", "padding 'circular'", "must be one of 'zeros', 'replicate', 'reflect'; got 'circular'",
         lambda k: k.dream(layers=k.layers(cnn={"padding": "circular"}))),
    Case("Load CNN", "preprocessing 'bgr'", "The input 'preprocessing' of Load CNN must be one of 'auto'",
         lambda k: k.dream(layers=k.layers(cnn={"preprocessing": "bgr"}))),
    Case("Load CNN", "weights '../../../etc/passwd'", "is not in models/cnn; pick another or 'default'",
         lambda k: k.dream(layers=k.layers(cnn={"weights": "../../../etc/passwd"}))),
    Case("Load CNN", "weights '/etc/hostname' (absolute)", "is not in models/cnn; pick another or 'default'",
         lambda k: k.dream(layers=k.layers(cnn={"weights": "/etc/hostname"}))),
    # Select Layers
    Case("Select Layers", "unknown layer 'no_such_layer'", "has no layer 'no_such_layer'. Nearest valid names:",
         lambda k: k.dream(layers=k.layers("no_such_layer: 1.0"))),
    Case("Select Layers", "no layers (empty text)", "No layers given. Write one 'layer: weight' per line",
         lambda k: k.dream(layers=k.layers(""))),
    Case("Select Layers", "weight 1e309", "Weight '1e309' of layer 'stage5' is outside -1e+06..1e+06",
         lambda k: k.dream(layers=k.layers("stage5: 1e309"))),
    Case("Select Layers", "weight 1e30", "Weight '1e30' of layer 'stage5' is outside -1e+06..1e+06",
         lambda k: k.dream(layers=k.layers("stage5: 1e30"))),
    Case("Select Layers", "weight 'nan'", "Weight 'nan' of layer 'stage5' is not a number",
         lambda k: k.dream(layers=k.layers("stage5: nan"))),
    Case("Select Layers", "every weight 0", "Every layer weight is 0: nothing to optimise",
         lambda k: k.dream(layers=k.layers("stage4: 0, stage5: 0"))),
    Case("Select Layers", "channel 99999 of a 112-channel layer",
         "stage5#99999 is out of range: 'stage5' has 112 channels (0..111)",
         lambda k: k.dream(layers=k.layers("stage5#99999"))),
    # Octave Pyramid
    Case("Octave Pyramid", "scale NaN",
         "The input 'scale' of Octave Pyramid must be a finite number from 1.05 to 4; got nan",
         lambda k: k.dream(octaves=k.octaves(scale=NAN))),
    Case("Octave Pyramid", "octaves 0 (checked by ComfyUI)", "Value 0 smaller than min of 1",
         lambda k: k.dream(octaves=k.octaves(octaves=0))),
    # Dream
    Case("Dream", "image with NaN pixels (Image Blend factor NaN)",
         "The input 'image' of Dream has 12,288 NaN values, in 4,096 of 4,096 pixels",
         lambda k: k.dream(image=k.nan_image())),
    Case("Dream", "guide with NaN pixels", "The input 'guide' of Dream has 12,288 NaN values",
         lambda k: k.dream(guide=k.nan_image())),
    Case("Dream", "step_size NaN", "The input 'step_size' of Dream must be a finite number from 0.0001 to 0.5; got nan",
         lambda k: k.dream(step_size=NAN)),
    Case("Dream", "normalize 'l2'", "The input 'normalize' of Dream must be one of 'mean_abs', 'std', 'laplacian'; got 'l2'",
         lambda k: k.dream(normalize="l2")),
    Case("Dream", "steps 0 (checked by ComfyUI)", "Value 0 smaller than min of 1", lambda k: k.dream(steps=0)),
    Case("Dream", "jitter NaN (checked by ComfyUI)", "Failed to convert an input value to a INT value: jitter, nan",
         lambda k: k.dream(jitter=NAN)),
    Case("Dream", "a 1×1 image", "needs at least 32×32 pixels", lambda k: k.dream(image=k.image(1, 1))),
    Case("Dream", "tile_size 64", "tile must be 0 (off) or at least 128 pixels", lambda k: k.dream(tile_size=64)),
    # Dream Zoom
    Case("Dream Zoom", "zoom NaN", "The input 'zoom' of Dream Zoom must be a finite number from 1 to 2; got nan",
         lambda k: k.zoom(zoom=NAN)),
    Case("Dream Zoom", "zoom 1e309 (infinite; checked by ComfyUI)", "Value inf bigger than max of 2.0",
         lambda k: k.zoom(zoom=INF)),
    Case("Dream Zoom", "seed -1 (checked by ComfyUI)", "Value -1 smaller than min of 0", lambda k: k.zoom(seed=-1)),
    # Content Loss
    Case("Content Loss", "content with NaN pixels", "The input 'content' of Content Loss has 12,288 NaN values",
         lambda k: k.optimize(k.content(content=k.nan_image()))),
    Case("Content Loss", "weight NaN", "The input 'weight' of Content Loss must be a finite number from 0 to 1e+06",
         lambda k: k.optimize(k.content(weight=NAN))),
    Case("Content Loss", "a layer#channel entry", "Content Loss compares whole layers: remove the '#channel' part",
         lambda k: k.optimize(k.content(layers=k.layers("stage4#3")))),
    # Style Loss
    Case("Style Loss", "style with NaN pixels", "The input 'style' of Style Loss has 12,288 NaN values",
         lambda k: k.optimize(k.style(style=k.nan_image()))),
    Case("Style Loss", "style_b with NaN pixels", "The input 'style_b' of Style Loss has 12,288 NaN values",
         lambda k: k.optimize(k.style(style_b=k.nan_image()))),
    Case("Style Loss", "mask of NaN (Solid Mask value NaN)", "The input 'mask' of Style Loss has 4,096 NaN values",
         lambda k: k.optimize(k.style(mask=k.mask(NAN)))),
    Case("Style Loss", "an empty mask (all 0)", "The input 'mask' of Style Loss is empty (all 0)",
         lambda k: k.optimize(k.style(mask=k.mask(0.0)))),
    Case("Style Loss", "statistic 'gramm'", "The input 'statistic' of Style Loss must be one of 'gram', 'mean_cov'",
         lambda k: k.optimize(k.style(statistic="gramm"))),
    Case("Style Loss", "blend NaN", "The input 'blend' of Style Loss must be a finite number from 0 to 1; got nan",
         lambda k: k.optimize(k.style(blend=NAN))),
    Case("Style Loss", "style_scale NaN", "The input 'style_scale' of Style Loss must be a finite number",
         lambda k: k.optimize(k.style(style_scale=NAN))),
    Case("Style Loss", "chained to a Content Loss on another Load CNN",
         "Chained objectives must read the same network",
         lambda k: k.optimize(k.style(objective=k.content(), layers=k.layers(cnn={"pooling": "average"})))),
    # Dream Objective
    Case("Dream Objective", "weight NaN",
         "The input 'weight' of Dream Objective must be a finite number from 0 to 10000",
         lambda k: k.optimize(k.dream_objective(weight=NAN, objective=k.content()))),
    # Optimize
    Case("Optimize", "init 'photo'", "The input 'init' of Optimize must be one of 'content', 'image', 'noise'",
         lambda k: k.optimize(k.content(), init="photo")),
    Case("Optimize", "optimizer 'sgd'", "The input 'optimizer' of Optimize must be one of 'adam', 'lbfgs'; got 'sgd'",
         lambda k: k.optimize(k.content(), optimizer="sgd")),
    Case("Optimize", "colour 'sepia'", "must be one of 'none', 'luminance', 'histogram'; got 'sepia'",
         lambda k: k.optimize(k.content(), colour="sepia")),
    Case("Optimize", "learning_rate NaN", "The input 'learning_rate' of Optimize must be a finite number from 0 to 10",
         lambda k: k.optimize(k.content(), learning_rate=NAN)),
    Case("Optimize", "ema NaN", "The input 'ema' of Optimize must be a finite number from 0 to 0.999; got nan",
         lambda k: k.optimize(k.content(), ema=NAN)),
    Case("Optimize", "image with NaN pixels", "The input 'image' of Optimize has 12,288 NaN values",
         lambda k: k.optimize(k.content(), init="image", image=k.nan_image())),
    Case("Optimize", "init 'image' without an image", "init 'image' needs an init image",
         lambda k: k.optimize(k.content(), init="image")),
    Case("Optimize", "colour 'luminance' with no content loss", "there is no content image",
         lambda k: k.optimize(k.style(), init="noise", colour="luminance")),
    # Dream Video
    Case("Dream Video", "flow 'farneback'",
         "The input 'flow' of Dream Video must be one of 'builtin', 'raft_small', 'raft_large', 'none'",
         lambda k: k.dream_video(flow="farneback")),
    Case("Dream Video", "blend NaN", "The input 'blend' of Dream Video must be a finite number from 0 to 1; got nan",
         lambda k: k.dream_video(blend=NAN)),
    Case("Dream Video", "frames with NaN pixels", "The input 'frames' of Dream Video has 12,288 NaN values",
         lambda k: k.dream_video(frames=k.nan_image())),
    # Stylise Video
    Case("Stylise Video", "temporal_weight NaN", "The input 'temporal_weight' of Stylise Video must be a finite number",
         lambda k: k.stylise_video(temporal_weight=NAN)),
    Case("Stylise Video", "optimizer 'sgd'", "The input 'optimizer' of Stylise Video must be one of 'adam', 'lbfgs'",
         lambda k: k.stylise_video(optimizer="sgd")),
    # Load Painting: its combo is checked when the prompt is validated
    Case("Load Painting", "painting 'mona_lisa'", "unknown painting 'mona_lisa'; bundled:",
         lambda k: k.optimize(k.style(style=k.add("ReverieLoadPainting", painting="mona_lisa")))),
    # Visualise Features
    Case("Visualise Features", "learning_rate NaN", "The input 'learning_rate' of Visualise Features must be a finite",
         lambda k: k.visualise(learning_rate=NAN)),
    Case("Visualise Features", "parameterisation 'wavelet'",
         "The input 'parameterisation' of Visualise Features must be one of", lambda k: k.visualise(parameterisation="wavelet")),
    # Tensors no core node makes: the node tier
    Case("Dream", "image with 4 NaN values in 2 pixels", "has 4 NaN values, in 2 of 256 pixels",
         lambda k: k.dream(image=_nan_pixels((1, 16, 16, 3), 4)), tier="node"),
    Case("Dream", "image with infinite values", "has 4 infinite values, in 2 of 256 pixels",
         lambda k: k.dream(image=_nan_pixels((1, 16, 16, 3), 4, INF)), tier="node"),
    Case("Dream", "int32 image", "The input 'image' of Dream holds int32 values; an IMAGE must hold floats in 0..1",
         lambda k: k.dream(image=torch.zeros(1, 16, 16, 3, dtype=torch.int32)), tier="node"),
    Case("Dream", "image of shape [16, 16, 3] (no batch)",
         "must be an IMAGE [batch, height, width, channels] with 1-4 channels; got shape (16, 16, 3)",
         lambda k: k.dream(image=torch.rand(16, 16, 3)), tier="node"),
    Case("Dream", "steps 2.5 (a float for an INT)", "The input 'steps' of Dream must be a whole number from 1 to 10000",
         lambda k: k.dream(steps=2.5), tier="node"),
    Case("Style Loss", "5-D mask [1, 1, 1, 16, 16]",
         "The input 'mask' of Style Loss must be a MASK [batch, height, width] (or [height, width]); got shape "
         "(1, 1, 1, 16, 16)", lambda k: k.style(mask=torch.ones(1, 1, 1, 16, 16)), tier="node"),
    Case("Style Loss", "mask values up to 2", "The input 'mask' of Style Loss must hold values in [0, 1]; got 0..2",
         lambda k: k.style(mask=torch.linspace(0, 2, 256).view(1, 16, 16)), tier="node"),
    Case("Content Loss", "content with NaN pixels in a batch", "has 6 NaN values, in 2 of 512 pixels",
         lambda k: k.content(content=_nan_pixels((2, 16, 16, 3), 6)), tier="node"),
]


def table() -> str:
    """docs/bad_input.md: every case as a row."""
    rows = [f"| {i} | {c.node} | {c.given} | {c.expect} | {'server' if c.tier == 'server' else 'node tier'} |"
            for i, c in enumerate(CASES, 1)]
    return "\n".join([
        "# Bad input: what each node says",
        "",
        "Every row is a test: `server` rows are sent to a real ComfyUI server as API prompts",
        "(tests/integration/test_bad_input.py), which must refuse them with this message and keep serving;",
        "`node tier` rows are tensors no core node makes, passed to the node as ComfyUI calls it",
        "(tests/nodes/test_bad_input_nodes.py). The list is `tests/bad_input_cases.py`; this file is made from",
        "it (`python -m tests.bad_input_cases > docs/bad_input.md`) and a test fails when they differ.",
        "",
        "Numbers are checked against each input's declared range, combo values against its options (ComfyUI",
        "0.3.75 checks neither NaN nor combo values sent over its API), images and masks for their shape and for",
        "NaN or infinite values before any step. A uint8 IMAGE or MASK is read as 0..255 (divided by 255).",
        "Failures reach ComfyUI as plain `ValueError`s, so its error header shows no install path.",
        "",
        "| # | node | input | message (excerpt) | checked |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
    ])


if __name__ == "__main__":
    print(table(), end="")
