"""Weight files are data, never code: pickles that would run something are refused before anything runs, and a
file that is not weights is refused without echoing its bytes."""
from __future__ import annotations

import pickle
import struct

import pytest

from reverie.engine.weights import PICKLE_SUFFIXES, read_state_dict
from tests.helpers import pickle_payload


@pytest.mark.parametrize("how", ["zip", "legacy", "pickle"])
@pytest.mark.parametrize("suffix", PICKLE_SUFFIXES)
def test_a_pickle_that_would_create_a_file_is_refused_and_creates_none(tmp_path, suffix, how):
    marker = tmp_path / "created_by_unpickling"
    path = pickle_payload(tmp_path / f"evil{suffix}", marker, how)
    with pytest.raises(ValueError, match=rf"evil\{suffix} could not be read as plain tensors with "
                                         r"torch.load\(weights_only=True\)"):
        read_state_dict(path)
    assert not marker.exists()
    if how == "pickle":  # the control: the payload is live, an unrestricted unpickler does create the file
        pickle.loads(path.read_bytes())
        assert marker.exists()


@pytest.mark.parametrize("header", [b'{"SECRET_VALUE": {"dtype": "F32", "shape": [1], "data_offsets": "SECRET"}}',
                                    b"SECRET_VALUE is no JSON"])
def test_a_foreign_file_is_refused_without_echoing_its_bytes(tmp_path, header):
    """safetensors' own errors quote the header they could not parse; ours names the file only."""
    path = tmp_path / "foreign.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ValueError) as error:
        read_state_dict(path)
    assert "foreign.safetensors is not a readable .safetensors file" in str(error.value)
    assert "SECRET" not in str(error.value) and str(tmp_path) not in str(error.value)


def test_a_text_file_named_pth_is_refused_without_echoing_it(tmp_path):
    path = tmp_path / "passwd.pth"
    path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(ValueError) as error:
        read_state_dict(path)
    assert "root:" not in str(error.value) and str(tmp_path) not in str(error.value)
