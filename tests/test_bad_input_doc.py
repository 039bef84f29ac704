"""docs/bad_input.md is the table tests/bad_input_cases.py makes, with at least 40 cases covering every node."""
import ast

from tests.bad_input_cases import CASES, DOC, table
from tests.helpers import ROOT


def display_names() -> set[str]:
    """Every `display_name="..."` a schema in nodes/ declares (read from the source, not imported)."""
    names = set()
    for path in (ROOT / "nodes").glob("*.py"):
        for call in ast.walk(ast.parse(path.read_text())):
            if isinstance(call, ast.Call) and getattr(call.func, "attr", getattr(call.func, "id", "")) in ("Schema",
                                                                                                        "schema"):
                names |= {kw.value.value for kw in call.keywords if kw.arg == "display_name"}
    return names


def test_doc_is_the_table_of_the_cases():
    assert (ROOT / DOC).read_text() == table(), f"{DOC} is stale: python -m tests.bad_input_cases > {DOC}"


def test_cases_cover_every_node():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    assert display_names() == {c.node for c in CASES}, display_names() ^ {c.node for c in CASES}
    assert {c.tier for c in CASES} == {"server", "node"}
