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
