"""The Python name rules: undefined names and locals read before assignment."""

from __future__ import annotations

import pytest

from lsp_server.pynames import identifiers, name_flaw
from lsp_server.syntax import SyntaxCheck

LOOP_BODY = (
    "\n        for idx2, elem2 in enumerate(numbers):\n"
    "            if idx != idx2 and abs(elem - elem2) < threshold:\n"
    "                return True\n"
    "    return False\n"
)


@pytest.mark.parametrize(
    "before,inserted,after,outside,flaw",
    [
        # the loop header must bind what its body uses
        ("def f(numbers, threshold):\n    ", "for idx in range(9):", LOOP_BODY, "", "elem"),
        (
            "def f(numbers, threshold):\n    ",
            "for idx, elem in enumerate(numbers):",
            LOOP_BODY,
            "",
            None,
        ),
        # a name nothing defines, unless the rest of the file mentions it
        ("def f(xs):\n    ", "return [x - lowest for x in xs]", "\n", "", "lowest"),
        ("def f(xs):\n    ", "return [x - lowest for x in xs]", "\n", "lowest = 0", None),
        ("import os\n", "p = os.path.join(base, 'a')", "\n", "", "base"),
        ("def f(xs):\n    ", "return len(sorted(xs))", "\n", "", None),  # builtins
        # a local read before the function assigns it
        ("def f(xs):\n    ", "ans.extend(xs)", "\n    ans = []\n    return ans\n", "", "ans"),
        ("def f(xs):\n    ans = []\n    ", "ans.extend(xs)", "\n    return ans\n", "", None),
        # a loop may assign it on an earlier turn
        ("def f(xs):\n    for x in xs:\n        ", "print(prev)", "\n        prev = x\n", "", None),
        # code that does not parse is the syntax check's business
        ("def f(xs):\n    ", "return (", "\n", "", None),
    ],
)
def test_name_flaws(before: str, inserted: str, after: str, outside: str, flaw: str | None) -> None:
    found = name_flaw(before, inserted, after, identifiers([outside]))
    if flaw is None:
        assert found is None
    else:
        assert found is not None and flaw in found


def test_the_header_of_an_indented_body_must_fit_it() -> None:
    before = "def f(xs):\n    total = 0\n    "
    after = "\n        total += x\n    return total\n"
    check = SyntaxCheck("python", before, after)
    baseline = check.errors()
    assert check.errors("for x in xs:") <= baseline
    assert check.errors("total = sum(xs)") > baseline  # the indented line below still fails
    assert check.errors("for x in xs") > baseline  # and a new error is one too
