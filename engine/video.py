"""Video without flicker: each frame starts from what was made of the previous one, moved along the
optical flow of the input frames and kept only where that flow is reliable.

- `dream_video`: frame 1 is dreamed in full; every later frame starts from its own input plus the
  previous frame's dreamed detail (dreamed minus input) warped into it, blended by `blend` where the
  forward and backward flows agree, then gets `refresh_steps` steps.
- `stylise_video` (Ruder et al. 2016): every later frame starts from the previous result warped into it
  (everywhere, so uncovered regions start stylised too), with a temporal loss (weighted by the consistency
  mask) beside the objective; each content loss reads
  the current frame as its content. Frames are optimised one after another: memory is one frame's. The clip
  may stay in host memory, in any float dtype and layout (a view of ComfyUI's images): each frame becomes a
  float32 copy on the network's device when its turn comes, and its result is yielded there.

`flow=None` turns motion compensation off (the previous frame's detail is blended in place, as most
DeepDream video tools do); `flicker` and `detail_drift` measure the result against the input's motion.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from .dream import DreamSettings, dream
from .features import FeatureNet
from .flow import Check, Flow, FlowEstimator, consistent, warp
from .losses import TemporalLoss
from .objectives import Objective
from .optimize import Callback, frame_progress
from .pyramid import Pyramid
from .style import ContentObjective, check_image
from .transfer import TransferReport, TransferSettings, transfer


@dataclass(frozen=True)
class Motion:
    """How frame t's pixels come from frame t-1: `flow` (t -> t-1, so `warp(previous, flow)` lines the previous
    frame up with this one) and `mask`, 1 where that is reliable."""

    flow: Flow
    mask: torch.Tensor

    def carry(self, previous: torch.Tensor) -> torch.Tensor:
        return warp(previous, self.flow)


def motion(estimate: FlowEstimator | None, current: torch.Tensor, previous: torch.Tensor,
           check: Check | None = None) -> Motion:
    """The motion from `previous` to `current` (RGB [1, 3, H, W]); without an estimator: none, everywhere reliable.
    `check` (the net's interrupt test) runs inside the estimates too."""
    if estimate is None:
        zero = current.new_zeros(current.shape[0], 2, *current.shape[-2:])
        return Motion(zero, current.new_ones(current.shape[0], 1, *current.shape[-2:]))
    back, forward = estimate(current, previous, check=check), estimate(previous, current, check=check)
    return Motion(back, consistent(back, forward))


Frames = torch.Tensor | Sequence[torch.Tensor]


def on_device(frame: torch.Tensor, net: FeatureNet) -> torch.Tensor:
    """A frame of a clip as a contiguous float32 copy on the net's device (the clip may be a view in host memory)."""
    return frame.to(net.cnn.device, torch.float32, memory_format=torch.contiguous_format)


def check_frames(frames: Frames) -> torch.Tensor:
    """A clip `[T, 3, H, W]` (T ≥ 1) from a batch or a sequence of `[3, H, W]` / `[1, 3, H, W]` frames, which
    must all have one size."""
    if isinstance(frames, torch.Tensor):
        return check_image(frames, "clip")
    if not frames:
        raise ValueError("The clip has no frames: give at least one.")
    frames = [check_image(f if f.dim() == 4 else f[None], f"frame {i + 1}") for i, f in enumerate(frames)]
    first = tuple(frames[0].shape[-2:])
    for i, f in enumerate(frames):
        if tuple(f.shape[-2:]) != first:
            raise ValueError(f"Frame {i + 1} is {f.shape[-1]}×{f.shape[-2]} but frame 1 is {first[1]}×{first[0]}: "
                             f"every frame of a clip must have the same size (resize them first).")
    return torch.cat(frames)


def dream_video(net: FeatureNet, objective: Objective, frames: Frames, settings: DreamSettings,
                blend: float, refresh_steps: int, flow: FlowEstimator | None, pyramid: Pyramid | None = None,
                callback: Callback | None = None) -> Iterator[torch.Tensor]:
    """Yields each frame's dream `[1, 3, H, W]` in order (see the module's docstring). Frame t is seeded with
    `settings.seed + t`; `blend` 0 dreams every frame on its own (with the first frame's settings)."""
    frames = check_frames(frames)
    if not 0 <= blend <= 1:
        raise ValueError(f"blend must be in [0, 1] (0 = every frame on its own, 1 = all of the previous detail); "
                         f"got {blend}.")
    if refresh_steps < 1:
        raise ValueError(f"refresh_steps must be at least 1; got {refresh_steps}.")
    previous_in = previous_out = None
    for t, current in enumerate(frames.split(1)):
        current = on_device(current, net)
        report = frame_progress(callback, t, len(frames))
        seeded = dataclasses.replace(settings, seed=settings.seed + t)
        if previous_out is None or blend == 0:
            out = dream(net, objective, current, seeded, pyramid, report)
        else:
            move = motion(flow, current, previous_in, net.check)
            detail = move.carry(previous_out - previous_in) * move.mask * blend
            start = (current + detail).clamp(0, 1)
            out = dream(net, objective, start, dataclasses.replace(seeded, steps=refresh_steps), None, report)
        previous_in, previous_out = current, out
        yield out


def stylise_video(net: FeatureNet, objective: Objective, frames: Frames, settings: TransferSettings,
                  temporal_weight: float, refresh_steps: int, flow: FlowEstimator | None,
                  pyramid: Pyramid | None = None, callback: Callback | None = None,
                  first: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, TransferReport]]:
    """Yields each frame's stylisation `[1, 3, H, W]` and its report, in order (see the module's docstring).
    Frame 1 starts from `first` (default: the frame itself) with `settings` and `pyramid`; later frames
    from the previous result warped into them, for `refresh_steps` steps at full size."""
    frames = check_frames(frames)
    if not temporal_weight >= 0:
        raise ValueError(f"temporal_weight must be ≥ 0 (0 = no temporal loss); got {temporal_weight}.")
    if refresh_steps < 1:
        raise ValueError(f"refresh_steps must be at least 1; got {refresh_steps}.")
    contents = [m for m in objective.modules() if isinstance(m, ContentObjective)]
    previous_in = previous_out = None
    for t, current in enumerate(frames.split(1)):
        current = on_device(current, net)
        for content in contents:
            content.image = current  # each content loss reads this frame
        report = frame_progress(callback, t, len(frames))
        if previous_out is None:
            start = (first if first is not None else current).to(current.device)
            out, result = transfer(net, objective, start, settings, pyramid, report, current)
        else:
            move = motion(flow, current, previous_in, net.check)
            carried = move.carry(previous_out)  # everywhere: uncovered borders repeat the stylised edge
            start = carried.clamp(0, 1)
            temporal = objective + temporal_weight * TemporalLoss(carried, move.mask)
            out, result = transfer(net, temporal if temporal_weight else objective, start,
                                   dataclasses.replace(settings, steps=refresh_steps), None, report, current)
        previous_in, previous_out = current, out
        yield out, result


def warp_error(sequence: torch.Tensor, motions: list[Motion]) -> float:
    """Mean |s_t - warp(s_{t-1})| over the reliable pixels of every consecutive pair of `sequence` [T, C, H, W],
    `motions[t - 1]` being frame t's motion."""
    errors, weights = [], []
    for t, move in enumerate(motions, start=1):
        diff = (sequence[t:t + 1] - move.carry(sequence[t - 1:t])).abs().mean(1, keepdim=True)
        errors.append((diff * move.mask).sum())
        weights.append(move.mask.sum())
    return float(torch.stack(errors).sum() / torch.stack(weights).sum().clamp_min(1))


def clip_motion(frames: torch.Tensor, estimate: FlowEstimator) -> list[Motion]:
    """The motion of every frame after the first of a clip `[T, 3, H, W]`."""
    return [motion(estimate, frames[t:t + 1], frames[t - 1:t]) for t in range(1, len(frames))]


def flicker(output: torch.Tensor, frames: torch.Tensor, motions: list[Motion]) -> float:
    """How much the output changes along the input's motion, relative to how much the input itself does
    (1: no more than the input; independent per-frame dreams are several times that)."""
    return warp_error(output, motions) / max(warp_error(frames, motions), 1e-8)


def detail_drift(output: torch.Tensor, frames: torch.Tensor, motions: list[Motion]) -> float:
    """The warp error of the added detail (output minus input): high when detail stays put while the content
    moves under it (ghosting), low when it follows the content."""
    return warp_error(output - frames, motions)
