"""The engine's command line dreams an image file without ComfyUI."""
from __future__ import annotations

import numpy as np
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
