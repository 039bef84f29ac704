"""The registry's view of the pack: pyproject.toml as the host's own parser reads it, the changelog, the icon."""
from __future__ import annotations

import re

from PIL import Image

from tests.helpers import ROOT


def test_pyproject_reads_as_the_registry_specifies():
    from comfy_config.config_parser import extract_node_configuration

    config = extract_node_configuration(str(ROOT))
    project, comfy = config.project, config.tool_comfy
    assert project.name == "reverie" and re.fullmatch(r"\d+\.\d+\.\d+", project.version)
    assert project.supported_os == ["OS Independent"] and "GPU :: NVIDIA CUDA" in project.supported_accelerators
    assert project.dependencies == (ROOT / "requirements.txt").read_text().split()
    assert (ROOT / project.license.file).is_file() and project.supported_comfyui_version == ">=0.3.75"
    assert comfy.publisher_id and comfy.display_name
    with Image.open(ROOT / comfy.icon) as icon:  # the registry's limit
        assert icon.width <= 800 and icon.height <= 400


def test_the_changelog_leads_with_the_version_in_pyproject():
    from comfy_config.config_parser import extract_node_configuration

    versions = re.findall(r"^## (\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert versions and versions[0] == extract_node_configuration(str(ROOT)).project.version
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))), reverse=True)
