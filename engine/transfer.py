"""Style transfer: optimise the pixels against an objective, coarse to fine, with Adam or L-BFGS.

The run is `optimize` (the loop Dream uses too) at each pyramid size, with the image-made targets
rebuilt for that size, Adam's moments resized and carried to the next size (as crowsonkb's
`scale_adam`), an optional bias-corrected EMA of the iterates, and colour handling around it.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import torch

from .backends import repeated_shapes
from .colour import COLOUR_MODES, luminance_only, match_histogram
from .features import FeatureNet
from .losses import TVLoss
from .objectives import Objective
from .optimize import Callback, Diverged, Progress, feature_loss, optimize, spans, whole_image
from .pyramid import Pyramid, resize
from .step_rules import BoundedLBFGS
from .style import ContentObjective, StyleObjective, Size, check_image, image_objectives
from .tiles import exact_tiles, tile_grid, tiled_sums

OPTIMIZERS = ("adam", "lbfgs")
TILE_STATISTICS = ("exact", "lagged")
INITS = ("content", "image", "noise")
DEFAULT_LR = {"adam": 0.02, "lbfgs": 1.0}
ADAM_BETAS = (0.9, 0.99)  # crowsonkb's choice: the second moment forgets faster than torch's 0.999
LBFGS_HISTORY = 20  # torch's default 100 keeps 200 image-sized vectors: 2.4 GB at 1024×1024


@dataclass(frozen=True)
class TransferSettings:
    """How to optimise. `steps` are per pyramid level (the pyramid's `coarse_steps` below the full size); `lr` None
    picks 0.02 for Adam (about a pixel change of 2 % per step) and 1 for L-BFGS; `tv_weight` adds a `TVLoss` term;
    `ema` is the decay of the averaged iterate that is returned (0: the last iterate); `colour` keeps the content's
    colours ("luminance": its chroma after the run, "histogram": its colour statistics given to the styles); `tile`
    (0: off) optimises sizes larger than it tile by tile with exactly the untiled result (see tiles.exact_tiles),
    each tile read with a `halo` (None: the layers' receptive margin); `tile_statistics` "lagged" takes each step's
    gradient at whole-image statistics extrapolated from the previous steps': one pass over the tiles per step
    instead of two (about 1/3 less time), not bit-exact."""

    optimizer: str = "adam"
    lr: float | None = None
    steps: int = 200
    tv_weight: float = 0.0
    ema: float = 0.0
    colour: str = "none"
    tile: int = 0
    halo: int | None = None
    tile_statistics: str = "exact"

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}.")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"The learning rate must be > 0; got {self.lr}.")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1; got {self.steps}.")
        if not self.tv_weight >= 0:
            raise ValueError(f"tv_weight must be ≥ 0 (0 = no smoothing); got {self.tv_weight}.")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1) (0 = off, 0.99 = average over ~100 steps); got {self.ema}.")
        if self.colour not in COLOUR_MODES:
            raise ValueError(f"colour must be one of {', '.join(COLOUR_MODES)}; got {self.colour!r}.")
        if self.tile < 0:
            raise ValueError(f"tile must be 0 (off) or a size in pixels; got {self.tile}.")
        if self.tile_statistics not in TILE_STATISTICS:
            raise ValueError(f"tile_statistics must be one of {', '.join(TILE_STATISTICS)}; "
                             f"got {self.tile_statistics!r}.")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


@dataclass
class TransferReport:
    """What a run did: sizes optimised, steps taken, final loss per image (empty if stopped), warnings
    (those of the largest size reached), and `stopped`, the message when the run diverged (NaN, saturation,
    noise, a rising loss: see optimize.Watch) and ended early with the best image from before."""

    sizes: list[Size]
    steps: int = 0
    loss: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stopped: str | None = None


def fit_size(have: Size, size: int | Size | None) -> Size:
    """(height, width): `size` itself, `have` for None, or `have` scaled so its longer side is `size`."""
    if size is None:
        return have
    if isinstance(size, int):
        if size < 1:
            raise ValueError(f"The output size must be at least 1 pixel; got {size}.")
        h, w = have
        return (max(round(h * size / max(h, w)), 1), max(round(w * size / max(h, w)), 1))
    return (int(size[0]), int(size[1]))


def init_image(kind: str, content: torch.Tensor | None = None, size: int | Size | None = None, seed: int = 0,
               image: torch.Tensor | None = None) -> torch.Tensor:
    """The starting image: the content image, `image`, or uniform noise drawn from `seed` (on the CPU,
    so every device gets the same noise), at `size` (see `fit_size`; its aspect follows `image`, else
    `content`, else square). The batch size is the reference's (1 for noise alone)."""
    if kind not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {kind!r}.")
    if kind == "content" and content is None:
        raise ValueError("init 'content' needs a content image: connect one or start from noise.")
    if kind == "image" and image is None:
        raise ValueError("init 'image' needs an init image: connect one or start from the content or noise.")
    reference = image if kind == "image" else content if kind == "content" else \
        image if image is not None else content
    if reference is not None:
        check_image(reference, "init image" if reference is image else "content image")
    have = tuple(reference.shape[-2:]) if reference is not None else (1, 1)
    if reference is None and size is None:
        raise ValueError("Noise without a content image needs an output size.")
    out_size = fit_size(have, size)
    if kind == "noise":
        batch = reference.shape[0] if reference is not None else 1
        noise = torch.rand(batch, 3, *out_size, generator=torch.Generator().manual_seed(seed))
        return noise.to(reference) if reference is not None else noise
    return resize(reference, out_size).clamp(0, 1)


class EMA:
    """A bias-corrected exponential moving average of the iterates (as Adam's moments)."""

    def __init__(self, x: torch.Tensor, decay: float):
        self.decay, self.accum = decay, 1.0
        self.value = torch.zeros_like(x)
        self.update(x)

    def update(self, x: torch.Tensor) -> None:
        self.accum *= self.decay
        self.value.mul_(self.decay).add_(x, alpha=1 - self.decay)

    def get(self) -> torch.Tensor:
        return self.value / (1 - self.accum)


def make_optimizer(settings: TransferSettings, x: torch.Tensor,
                   previous: torch.optim.Optimizer | None = None) -> torch.optim.Optimizer:
    """Adam (warm-started from `previous`, its moments resized to `x`) or L-BFGS inside [0, 1] (fresh: its
    history of differences at another size means nothing here). One L-BFGS step is one iteration and
    usually one loss evaluation; its loss never rises (see BoundedLBFGS)."""
    if settings.optimizer == "lbfgs":
        return BoundedLBFGS([x], lr=settings.learning_rate, history=LBFGS_HISTORY)
    opt = torch.optim.Adam([x], lr=settings.learning_rate, betas=ADAM_BETAS)
    if previous is not None and previous.state:
        (old,) = previous.state.values()
        size = tuple(x.shape[-2:])
        # Departure from crowsonkb's scale_adam: the losses are means over positions, so each pixel's
        # gradient shrinks in proportion to the pixel count; rescale the moments to match, or the carried
        # second moment damps the steps at the new size for ~1/(1 - beta2) steps.
        r = old["exp_avg"][0, 0].numel() / x[0, 0].numel()
        opt.state[x] = {"step": old["step"].clone(), "exp_avg": resize(old["exp_avg"], size) * r,
                        "exp_avg_sq": resize(old["exp_avg_sq"], size).clamp_min(0) * r ** 2}
    return opt


def transfer(net: FeatureNet, objective: Objective, init: torch.Tensor, settings: TransferSettings = TransferSettings(),
             pyramid: Pyramid | None = None, callback: Callback | None = None,
             content: torch.Tensor | None = None) -> tuple[torch.Tensor, TransferReport]:
    """Optimises `init` (a BCHW batch in [0, 1], the output size) against `objective`; returns the image
    and a report. Every batch element is optimised (Adam treats them independently; L-BFGS shares one
    history over the batch's summed loss).

    The image and every buffer as large as it (the optimiser's state, targets, masks) stay on `init`'s device;
    the network computes on its own, one tile (or the whole image) at a time: an `init` in host memory with
    the network on a GPU runs prints larger than the GPU's memory (tiled: see memory.plan). The objective is
    copied, never changed: its image-made terms get targets for each pyramid size. `content` (default: the first
    content loss's image) is what colour handling keeps. A run that diverges (optimize.Watch) ends early: the
    best image from before is returned, upscaled to the output size, and `report.stopped` says what happened
    (no exception).
    """
    init = check_image(init, "init image")
    missing = objective.layers() - set(net.layers)
    if missing:
        raise ValueError(f"The objective reads layers {sorted(missing)} that the feature net does not compute; "
                         f"build the FeatureNet with objective.layers().")
    height, width = init.shape[-2:]
    if min(height, width) < net.min_size:
        raise ValueError(f"The output is {width}×{height}; {net.cnn.spec.title} needs at least "
                         f"{net.min_size}×{net.min_size} pixels.")
    objective, content = _prepare(objective, settings, content, net.cnn.device, init.device)
    pyramid = pyramid or Pyramid(1)
    sizes = pyramid.sizes(height, width, net.min_size)
    steps = pyramid.steps(settings.steps, len(sizes))
    shares = spans(steps)
    report = TransferReport(sizes)
    loss_fn = feature_loss(net, objective)
    grid = tile_grid(net, settings.tile, settings.halo) if settings.tile else None
    x, opt = init.detach(), None
    with repeated_shapes(net.cnn.device):  # each level repeats its shape for every step
        for level, size in enumerate(sizes):
            tiles = None if grid is None or grid.fits(*size) else grid
            warnings = [w for term in image_objectives(objective) for w in term.retarget(net, size, tiles)]
            report.warnings = list(dict.fromkeys(warnings))  # those of the largest size reached
            # contiguous: L-BFGS views the gradient flat, which a permuted (e.g. HWC-read) image cannot give
            x = resize(x, size).clamp(0, 1).contiguous().requires_grad_(True)
            opt = make_optimizer(settings, x, opt)
            ema = EMA(x.detach(), settings.ema) if settings.ema else None
            evaluate = whole_image(loss_fn) if tiles is None else \
                exact_tiles(net, objective, tiles, lagged=settings.tile_statistics == "lagged")
            try:
                x = optimize(x, evaluate, opt, steps[level], _observer(report, ema, callback), level, len(sizes),
                             span=shares[level])
            except Diverged as e:
                if e.image is None:
                    raise
                report.stopped = str(e)
                report.warnings.append(report.stopped)
                x = resize(e.image, (height, width))
                break
            if ema is not None:
                x = ema.get().clamp(0, 1)
    if settings.colour == "luminance":
        x = luminance_only(x, content)
    if report.stopped is None:
        with torch.no_grad():
            tiled = grid is not None and not grid.fits(*x.shape[-2:])
            report.loss = (objective.total(tiled_sums(net, x, grid, objective.sums)) if tiled else loss_fn(x)).tolist()
    return x.detach(), report


def _prepare(objective: Objective, settings: TransferSettings, content: torch.Tensor | None, compute: torch.device,
             storage: torch.device) -> tuple[Objective, torch.Tensor | None]:
    """A copy of `objective` placed on `compute` and `storage` (see Objective.place), with its styles
    colour-matched and TV added as `settings` ask, and the content image colour handling keeps (on `storage`)."""
    # a copy whose terms this run may retarget; the image buffers are shared (never changed in place)
    objective = copy.deepcopy(objective, memo={id(t): t for t in objective.buffers()}).place(compute, storage)
    if content is None:
        content = next((m.image for m in objective.modules() if isinstance(m, ContentObjective)), None)
    if settings.colour != "none":
        if content is None:
            raise ValueError(f"colour {settings.colour!r} keeps the content image's colours, but there is no "
                             f"content image: add a content loss or pass the content image.")
        content = check_image(content, "content image").to(storage)
    if settings.colour == "histogram":
        for style in (m for m in objective.modules() if isinstance(m, StyleObjective)):
            style.map_images(lambda s: match_histogram(s, content))
    if settings.tv_weight > 0:
        objective = objective + settings.tv_weight * TVLoss()
    return objective, content


def _observer(report: TransferReport, ema: EMA | None, callback: Callback | None) -> Callback:
    """Counts steps, updates the EMA and shows the callback the averaged image when there is one."""
    def observe(p: Progress) -> None:
        report.steps += 1
        if ema is not None:
            ema.update(p.image)
            p = dataclasses.replace(p, image=ema.get())
        if callback is not None:
            callback(p)
    return observe
