"""The server hands the frontend what its node help and template browser fetch for this pack: the help page
at /extensions/<pack>/docs/<node id>.md with its pictures (relative to that folder), and every example's
thumbnail at /api/workflow_templates/<pack>/<name>.jpg."""
import re

from graphs import WORKFLOWS, pack_node_ids

PACK = "reverie"  # the pack's folder name in custom_nodes


def test_every_nodes_help_page_and_its_pictures_are_served(comfy):
    for node_id in sorted(pack_node_ids()):
        page = comfy.request(f"/extensions/{PACK}/docs/{node_id}.md").decode()
        assert page.startswith("# "), node_id
        for picture in re.findall(r"!\[[^\]]+\]\(([^)]+)\)", page):
            assert comfy.request(f"/extensions/{PACK}/docs/{picture}")[:3] == b"\xff\xd8\xff", picture


def test_every_examples_thumbnail_is_served(comfy):
    for path in WORKFLOWS:
        assert comfy.request(f"/api/workflow_templates/{PACK}/{path.stem}.jpg")[:3] == b"\xff\xd8\xff", path.stem
