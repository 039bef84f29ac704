"""The engine's command line dreams an image file without ComfyUI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reverie.engine.cli import main
from tests.helpers import shared_file


def test_cli_dream_writes_a_changed_image_of_the_same_size(tmp_path, capsys):
    source = tmp_path / "in.png"
    Image.open(shared_file("testdata/images/chelsea.png")).convert("RGB").resize((96, 64)).save(source)
    target = tmp_path / "out.png"
    main(["dream", str(source), str(target), "--arch", "googlenet_caffe", "--weights", str(shared_file("weights/googlenet_caffe.safetensors")),
          "--layers", "inception_3b/output", "--steps", "2", "--octaves", "2"])
    before, after = np.asarray(Image.open(source), float), np.asarray(Image.open(target), float)
    assert after.shape == before.shape and np.abs(after - before).mean() > 1
    assert str(target) in capsys.readouterr().out


def _photo_file(tmp_path, name: str, size: tuple[int, int], shift: int = 0):
    path = tmp_path / f"{Path(name).stem}_{shift}.png"
    image = Image.open(shared_file(f"testdata/images/{name}")).convert("RGB")
    image.crop((shift, 0, shift + image.width // 2, image.height // 2)).resize(size).save(path)
    return path


def test_cli_style_writes_a_stylised_image_at_the_asked_size(tmp_path, capsys):
    """The default model with its default style layers; the bar and the output path are printed."""
    content, style = _photo_file(tmp_path, "chelsea.png", (96, 64)), _photo_file(tmp_path, "starry_night.jpg", (64, 64))
    target = tmp_path / "styled.png"
    main(["style", str(content), str(target), "--style", str(style), "--size", "80", "--style-steps", "3"])
    out = np.asarray(Image.open(target), float)
    assert out.shape == (53, 80, 3)
    before = np.asarray(Image.open(content).resize((80, 53)), float)
    assert np.abs(out - before).mean() > 1
    captured = capsys.readouterr()
    assert str(target) in captured.out and "style [" in captured.err and "100%" in captured.err


def test_cli_offload_needs_tiles_and_makes_the_same_pictures(tmp_path, capsys):
    """--offload keeps the images in host memory (here the device is the host too, so this checks the wiring):
    style and dream make the pictures they make without it; without a tile size it is refused."""
    content, style = _photo_file(tmp_path, "chelsea.png", (96, 64)), _photo_file(tmp_path, "starry_night.jpg", (64, 64))
    with pytest.raises(SystemExit) as refused:
        main(["dream", str(content), str(tmp_path / "d.png"), "--offload"])
    assert refused.value.code == 2 and "--offload needs a tile size (--tile N" in capsys.readouterr().err
    outputs = []
    for extra in ([], ["--offload"]):
        styled, dreamt = tmp_path / f"styled{len(outputs)}.png", tmp_path / f"dreamt{len(outputs)}.png"
        main(["style", str(content), str(styled), "--style", str(style), "--size", "80", "--style-steps", "2",
              "--style-tile", "4096", *extra])
        main(["dream", str(content), str(dreamt), "--steps", "2", "--octaves", "1", "--tile", "4096", *extra])
        outputs.append([np.asarray(Image.open(path)) for path in (styled, dreamt)])
    assert all(np.array_equal(a, b) for a, b in zip(*outputs))


def test_cli_style_needs_layers_for_networks_without_defaults(tmp_path):
    content = _photo_file(tmp_path, "chelsea.png", (64, 64))
    with pytest.raises(SystemExit, match="give --content-layers and --style-layers"):
        main(["style", str(content), str(tmp_path / "o.png"), "--style", str(content), "--arch", "vgg19",
              "--weights", str(shared_file("weights/vgg19_partial_conv1_1-conv3_4.safetensors"))])


def test_cli_video_dreams_a_folder_of_frames_into_an_animated_webp(tmp_path):
    target = tmp_path / "dream.webp"
    main(["video", str(_frames_folder(tmp_path)), str(target), "--steps", "2", "--jitter", "4"])
    with Image.open(target) as animation:
        assert animation.n_frames == 3 and animation.size == (64, 48)


def test_cli_video_stylises_an_animated_gif_into_a_folder(tmp_path):
    source = tmp_path / "clip.gif"
    pictures = [Image.open(_photo_file(tmp_path, "chelsea.png", (64, 48), shift=4 * t)) for t in range(3)]
    pictures[0].save(source, save_all=True, append_images=pictures[1:], duration=100)
    style = _photo_file(tmp_path, "starry_night.jpg", (48, 48))
    target = tmp_path / "styled"
    main(["video", str(source), str(target), "--style", str(style), "--style-steps", "2", "--refresh-steps", "1"])
    written = sorted(target.iterdir())
    assert [p.name for p in written] == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    assert Image.open(written[0]).size == (64, 48)


def test_cli_visualise_writes_a_labelled_atlas(tmp_path, capsys):
    """Two channels at 64 px in one row: the atlas is two tiles wide, and the labels are printed."""
    target = tmp_path / "atlas.png"
    main(["visualise", str(target), "--arch", "googlenet_caffe", "--weights",
          str(shared_file("weights/googlenet_caffe.safetensors")), "--layer", "inception_3a/output",
          "--channels", "5, 9", "--size", "64", "--steps", "2", "--columns", "2"])
    width, height = Image.open(target).size
    assert 2 * 64 < width < 3 * 64 and 64 < height < 2 * 64
    out = capsys.readouterr().out
    assert "inception_3a/output#5\ninception_3a/output#9" in out and str(target) in out


def _frames_folder(tmp_path, count: int = 3):
    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(count):
        _photo_file(tmp_path, "chelsea.png", (64, 48), shift=4 * t).rename(frames / f"{t:02d}.png")
    return frames


def test_cli_bad_input_exits_with_the_engines_message_not_a_traceback(tmp_path, capsys):
    """An unknown layer and a missing file: exit status 2 and one line naming what was wrong."""
    source = _photo_file(tmp_path, "chelsea.png", (64, 48))
    for argv, named in ((["dream", str(source), str(tmp_path / "o.png"), "--layers", "bogus"], "no layer 'bogus'"),
                        (["dream", str(tmp_path / "missing.png"), str(tmp_path / "o.png")], "missing.png")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert "python -m engine dream: error:" in err and named in err and "Traceback" not in err


def test_cli_video_that_diverges_keeps_the_frames_made_and_warns(tmp_path, capsys):
    """A step size far too large pins the first frame's pixels: its starting image is written, with the reason."""
    target = tmp_path / "dream"
    main(["video", str(_frames_folder(tmp_path)), str(target), "--steps", "20", "--step-size", "1000"])
    written = sorted(target.iterdir())
    assert len(written) == 1 and Image.open(written[0]).size == (64, 48)
    err = capsys.readouterr().err
    assert "warning: Stopped at frame 1 of 3: The run diverged" in err and "part 1/3" in err


def test_cli_video_interrupted_keeps_the_frames_made(tmp_path, capsys, monkeypatch):
    """Ctrl+C while frame 2's flow is estimated: frame 1 is written, the message says so on a line of its own
    (not after the progress bar), and the exit status is 130, with no traceback."""
    from reverie.engine import cli

    def interrupted(source, target, *, check=None):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "flow_estimator", lambda method, weights: (interrupted, []))
    target = tmp_path / "dream"
    with pytest.raises(SystemExit) as stop:
        main(["video", str(_frames_folder(tmp_path)), str(target), "--steps", "2", "--jitter", "4"])
    assert stop.value.code == 130
    assert [p.name for p in sorted(target.iterdir())] == ["frame_00000.png"]
    err = capsys.readouterr().err
    assert "part 1/3" in err and "Traceback" not in err
    lines = err.split("\n")
    assert f"Interrupted at frame 2 of 3: frame 1 is in {target}." in lines
    assert "python -m engine video: interrupted" in lines
