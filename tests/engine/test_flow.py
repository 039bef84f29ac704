"""Optical flow: warping, the consistency mask, the built-in TV-L1 estimator on real photos, RAFT loading."""
from __future__ import annotations

import math
import os
from functools import lru_cache

import pytest
import torch

from reverie.engine.flow import FLOW_METHODS, FlowSettings, consistent, estimate_flow, flow_estimator, warp
from reverie.engine.pyramid import resize
from tests.helpers import photo

BORDER = 8  # pixels left out of EPEs: content enters or leaves the frame there


def constant_flow(dx: float, dy: float, h: int, w: int, batch: int = 1) -> torch.Tensor:
    return torch.tensor([dx, dy], dtype=torch.float32).view(1, 2, 1, 1).expand(batch, 2, h, w).contiguous()


def epe(flow: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor | None = None) -> float:
    """Mean endpoint error over `valid` pixels, leaving out a border of BORDER pixels."""
    mask = torch.zeros_like(flow[:, :1])
    mask[..., BORDER:-BORDER, BORDER:-BORDER] = 1
    if valid is not None:
        mask = mask * valid
    return float(((flow - truth).norm(dim=1, keepdim=True) * mask).sum() / mask.sum())


@lru_cache(maxsize=None)
def _photo(name: str, size: tuple[int, int]) -> torch.Tensor:
    return photo(name, size)


# --- warp --------------------------------------------------------------------------------------------

def test_warp_of_an_integer_shift_is_a_roll_on_the_interior():
    """out(p) = x(p + (2, -1)): x rolled by (-2, +1) pixels wherever p + flow stays inside."""
    x = torch.rand(2, 3, 20, 24)
    out = warp(x, constant_flow(2, -1, 20, 24))
    rolled = torch.roll(x, (1, -2), (-2, -1))
    torch.testing.assert_close(out[..., 1:, :-2], rolled[..., 1:, :-2], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[..., 0, :-2], x[..., 0, 2:], atol=1e-5, rtol=0)  # border row replicated
    torch.testing.assert_close(out[..., 1:, -2:], x[..., :-1, -1:].expand(-1, -1, -1, 2), atol=1e-5, rtol=0)


def test_warp_of_a_half_pixel_is_the_mean_of_neighbours():
    x = torch.rand(1, 1, 8, 10)
    out = warp(x, constant_flow(0.5, 0, 8, 10))
    torch.testing.assert_close(out[..., :-1], (x[..., :-1] + x[..., 1:]) / 2, atol=1e-5, rtol=0)


def test_warp_with_zero_flow_is_the_identity():
    x = torch.rand(2, 4, 9, 13)
    torch.testing.assert_close(warp(x, torch.zeros(2, 2, 9, 13)), x, atol=1e-6, rtol=0)


def test_warp_broadcasts_a_batch_of_one():
    x, flows = torch.rand(1, 3, 12, 12), torch.randn(3, 2, 12, 12) * 2
    out = warp(x, flows)
    assert out.shape == (3, 3, 12, 12)
    for i in range(3):
        torch.testing.assert_close(out[i:i + 1], warp(x, flows[i:i + 1]))
    xs = torch.rand(2, 3, 12, 12)
    torch.testing.assert_close(warp(xs, flows[:1])[1:], warp(xs[1:], flows[:1]))


def test_warp_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match=r"\[1, 3, 8, 8\].*\[1, 2, 8, 9\]"):
        warp(torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 8, 9))
    with pytest.raises(ValueError, match="batch"):
        warp(torch.rand(2, 3, 8, 8), torch.zeros(3, 2, 8, 8))


# --- consistent --------------------------------------------------------------------------------------

def test_consistent_flows_agree_except_where_they_leave_the_image():
    forward, backward = constant_flow(3, 0, 10, 16), constant_flow(-3, 0, 10, 16)
    mask = consistent(forward, backward)
    assert mask.shape == (1, 1, 10, 16) and mask.dtype == torch.float32
    assert mask[..., :13].eq(1).all() and mask[..., 13:].eq(0).all()  # x + 3 > 15 falls outside
    assert consistent(forward, -backward).eq(0).all()  # both say "right": they disagree everywhere


def test_consistent_masks_motion_boundaries():
    forward = torch.zeros(1, 2, 10, 16)
    forward[:, 0, :, 8:] = 2  # the right half moves 2 px right
    backward = warp(-forward, -forward)  # exact: backward(q) = -forward(q - 2) on the moving half
    mask = consistent(forward, backward)
    assert mask[..., 7].eq(0).all()  # forward difference across the motion edge
    assert mask[..., :7].eq(1).all() and mask[..., 9:14].eq(1).all()


def test_consistent_rejects_mismatched_flows():
    with pytest.raises(ValueError, match=r"\[1, 2, 8, 8\].*\[1, 2, 8, 9\]"):
        consistent(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 9))


# --- estimate_flow: inputs, devices -------------------------------------------------------------------

def test_estimate_flow_rejects_bad_frames():
    with pytest.raises(ValueError, match=r"source \[1, 3, 32, 32\] and target \[1, 3, 32, 30\]"):
        estimate_flow(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 30))
    for shape in ((3, 32, 32), (1, 4, 32, 32), (1, 1, 32, 32)):
        with pytest.raises(ValueError, match="RGB"):
            estimate_flow(torch.rand(*shape), torch.rand(*shape))


def test_flow_settings_are_checked():
    for bad in (dict(levels=0), dict(iterations=0), dict(scale=1.0), dict(smoothness=0), dict(texture=1.0)):
        with pytest.raises(ValueError, match="FlowSettings"):
            FlowSettings(**bad)


def test_estimate_flow_stays_on_the_device():
    """Every op runs on `meta`: no CPU tensor beside the inputs and no host sync (.item()) anywhere."""
    frames = torch.empty(2, 3, 40, 36, device="meta")
    flow = estimate_flow(frames, frames, FlowSettings(warps=1, iterations=2, texture=0.9))
    assert flow.device.type == "meta" and flow.shape == (2, 2, 40, 36) and flow.dtype == torch.float32
    assert consistent(flow, flow).device.type == "meta"


def test_estimate_flow_batches_and_small_frames():
    """Items of a batch are independent; identical frames give zero flow; frames under the pyramid's
    minimum size run at one level; half-precision input gives a float32 flow."""
    x = torch.rand(2, 3, 24, 20)
    moved = torch.roll(x, 1, -1)
    both = estimate_flow(x, moved)
    torch.testing.assert_close(both[1:], estimate_flow(x[1:], moved[1:]), atol=1e-4, rtol=0)
    assert estimate_flow(x, x).abs().max() < 1e-3
    assert estimate_flow(x[..., :9, :7].half(), x[..., :9, :7].half()).dtype == torch.float32


# --- estimate_flow: accuracy on real photos ---------------------------------------------------------

def pan(name: str, dx: float, dy: float, n: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two 256-px views of one photo, the second panned by (dx, dy) (whole or half pixels): crops of
    the photo at twice the size at offsets 2·(dx, dy) apart, each shrunk by 2. No wrap-around."""
    pad = 16
    big = _photo(name, (2 * (n + 2 * pad),) * 2)
    ox, oy = round(2 * dx), round(2 * dy)
    crop = lambda x0, y0: resize(big[..., y0:y0 + 2 * n, x0:x0 + 2 * n], (n, n))  # noqa: E731
    source, target = crop(2 * pad, 2 * pad), crop(2 * pad - ox, 2 * pad - oy)  # target(p + d) = source(p)
    return source, target, constant_flow(ox / 2, oy / 2, n, n)


# Measured EPEs (px, defaults): chelsea (2,0) 0.001, (3,-4) 0.004, (2.5,1.5) 0.037, (0,-3.5) 0.015;
# coffee (-4.5,5.5) 0.053, (6,6) 0.008.
@pytest.mark.parametrize("name, dx, dy", [("chelsea.png", 2, 0), ("chelsea.png", 3, -4), ("chelsea.png", 2.5, 1.5),
                                          ("chelsea.png", 0, -3.5), ("coffee.png", -4.5, 5.5), ("coffee.png", 6, 6)])
def test_camera_pans_are_found_to_half_a_pixel(name, dx, dy):
    source, target, truth = pan(name, dx, dy)
    flow = estimate_flow(source, target)
    assert flow.shape == truth.shape
    assert epe(flow, truth) <= 0.5


def similarity(name: str, zoom: float, degrees: float, n: int = 256):
    """A 256-px crop of a photo and the same view zoomed and rotated about its centre (resampled from a
    larger view so no border is invented), with the true flow (A - I)(p - c)."""
    pad = 32
    big = _photo(name, (n + 2 * pad,) * 2)
    a = math.radians(degrees)
    rotate = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    forward, inverse = zoom * rotate, rotate.T / zoom

    def field(matrix: torch.Tensor, size: int) -> torch.Tensor:
        c = (size - 1) / 2
        ys, xs = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
        p = torch.stack((xs, ys))  # [2, H, W]
        return (torch.einsum("ij,jhw->ihw", matrix - torch.eye(2), p.float()))[None]

    target = warp(big, field(inverse, n + 2 * pad))[..., pad:pad + n, pad:pad + n]  # target(Ap) = source(p)
    return big[..., pad:pad + n, pad:pad + n], target, field(forward, n)


# Measured EPEs (px, defaults): zoom 1.03× chelsea 0.061, coffee 0.085; rotation 2° chelsea 0.062,
# coffee 0.078.
@pytest.mark.parametrize("name, zoom, degrees", [("chelsea.png", 1.03, 0), ("coffee.png", 1.03, 0),
                                                 ("chelsea.png", 1, 2), ("coffee.png", 1, 2)])
def test_small_zooms_and_rotations(name, zoom, degrees):
    source, target, truth = similarity(name, zoom, degrees)
    assert epe(estimate_flow(source, target), truth) <= 0.3


def test_texture_setting_copes_with_an_exposure_change():
    """Measured (chelsea, pan (3.5, -2.5), target ×1.15 + 0.03): EPE 21 px plain, 0.09 with texture=0.95."""
    source, target, truth = pan("chelsea.png", 3.5, -2.5)
    brighter = (target * 1.15 + 0.03).clamp(0, 1)
    assert epe(estimate_flow(source, brighter, FlowSettings(texture=0.95)), truth) <= 0.5


# --- occlusion ---------------------------------------------------------------------------------------

def test_disoccluded_pixels_are_masked_and_the_background_is_kept():
    """A 60×60 patch of one photo pasted on another, moved 8 px right between the frames. Pixels of
    frame 1 that the patch covers in frame 2 (and those of frame 2 it uncovers) have no match: the
    consistency mask must drop most of them, and keep the background well away from the patch.
    Measured: masked 0.885 (forward) / 0.994 (backward); background kept 1.00 / 1.00; patch EPE 0.375."""
    n, size, x0, y0, move = 256, 60, 100, 98, 8
    background = _photo("coffee.png", (n, n))
    patch = _photo("astronaut.png", (256, 256))[..., 80:80 + size, 100:100 + size]
    frames, covers = [], []
    for x in (x0, x0 + move):
        frame, cover = background.clone(), torch.zeros(1, 1, n, n)
        frame[..., y0:y0 + size, x:x + size] = patch
        cover[..., y0:y0 + size, x:x + size] = 1
        frames.append(frame)
        covers.append(cover)
    forward, backward = estimate_flow(*frames), estimate_flow(*frames[::-1])
    mask_f, mask_b = consistent(forward, backward), consistent(backward, forward)
    hidden_f = covers[1] * (1 - covers[0])  # frame-1 background behind the patch in frame 2
    hidden_b = covers[0] * (1 - covers[1])  # frame-2 background the patch uncovered
    near = torch.nn.functional.max_pool2d(covers[0] + covers[1], 41, 1, 20) > 0
    far = torch.zeros_like(near)
    far[..., BORDER:-BORDER, BORDER:-BORDER] = True
    far &= ~near
    assert 1 - (mask_f * hidden_f).sum() / hidden_f.sum() >= 0.7
    assert 1 - (mask_b * hidden_b).sum() / hidden_b.sum() >= 0.7
    assert mask_f[far].mean() >= 0.9 and mask_b[far].mean() >= 0.9
    truth = torch.zeros(1, 2, n, n)
    truth[:, 0] = move * covers[0][:, 0]
    assert epe(forward, truth, covers[0] * covers[1]) <= 1.0  # the patch itself moves 8 px


class Stop(Exception):
    """What the tests' interrupt raises."""


def test_check_runs_at_every_iteration_and_stops_the_estimate():
    """The built-in estimator calls `check` before each primal-dual iteration (levels × warps × iterations
    times), so an interrupt stops it within one iteration, whatever the frame size."""
    settings = FlowSettings(levels=2, min_size=16, warps=2, iterations=3)
    x = torch.rand(1, 3, 40, 40)
    calls = []
    estimate_flow(x, x, settings, check=lambda: calls.append(1))
    assert len(calls) == 2 * 2 * 3

    def interrupt():
        calls.append(1)
        if len(calls) == 5:
            raise Stop
    calls.clear()
    with pytest.raises(Stop):
        estimate_flow(x, x, settings, check=interrupt)
    assert len(calls) == 5


# --- flow_estimator ----------------------------------------------------------------------------------

def test_flow_estimator_builtin_and_unknown_methods():
    assert flow_estimator() == (estimate_flow, [])
    assert FLOW_METHODS == ("builtin", "raft_small", "raft_large")
    with pytest.raises(ValueError, match="builtin, raft_small, raft_large"):
        flow_estimator("farneback")


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """torch.hub's folder pointed at an empty temporary one."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub"


def raft_file(method: str) -> str:
    from torchvision.models import optical_flow
    enum = {"raft_small": optical_flow.Raft_Small_Weights, "raft_large": optical_flow.Raft_Large_Weights}[method]
    return os.path.basename(enum.DEFAULT.url)


@pytest.mark.parametrize("method", ["raft_small", "raft_large"])
def test_missing_raft_weights_fall_back_to_builtin_with_a_warning(method, hub_dir, tmp_path):
    pytest.importorskip("torchvision")
    name = raft_file(method)
    estimator, warnings = flow_estimator(method)
    assert estimator is estimate_flow and len(warnings) == 1
    assert name in warnings[0] and str(hub_dir / "checkpoints") in warnings[0]
    estimator, warnings = flow_estimator(method, tmp_path / "nowhere.safetensors")
    assert estimator is estimate_flow and "nowhere.safetensors" in warnings[0] and name in warnings[0]


def test_raft_runs_from_a_weights_file_or_the_hub_cache(hub_dir, tmp_path):
    """Random-init RAFT-small weights, from a .safetensors file and from torch.hub's cache as .pth:
    odd sizes are padded for the network and the flow cropped back."""
    optical_flow = pytest.importorskip("torchvision.models.optical_flow")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    state = optical_flow.raft_small(weights=None).state_dict()
    save_file(state, tmp_path / "raft.safetensors")
    (hub_dir / "checkpoints").mkdir(parents=True)
    torch.save(state, hub_dir / "checkpoints" / raft_file("raft_small"))
    x = torch.rand(1, 3, 61, 75)
    flows = []
    for weights in (tmp_path / "raft.safetensors", None):
        estimator, warnings = flow_estimator("raft_small", weights)
        assert warnings == [] and estimator is not estimate_flow
        flows.append(estimator(x, torch.roll(x, 2, -1)))
    assert flows[0].shape == (1, 2, 61, 75) and flows[0].dtype == torch.float32
    torch.testing.assert_close(flows[0], flows[1])
    with pytest.raises(ValueError, match="same shape"):
        estimator(x, x[..., :60, :])
    calls = []
    estimator(x, x, check=lambda: calls.append(1))
    assert len(calls) == 12  # before each of RAFT's flow updates

    def interrupt():
        raise Stop
    with pytest.raises(Stop):
        estimator(x, x, check=interrupt)
    flows.append(estimator(x, torch.roll(x, 2, -1)))  # the check is gone with the call that had it
    torch.testing.assert_close(flows[0], flows[2])
    save_file({"conv.weight": torch.zeros(1)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="raft_small"):
        flow_estimator("raft_small", tmp_path / "other.safetensors")
