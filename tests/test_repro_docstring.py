"""The "how it differs" section of a paper's docstring, read once for every output."""

from reproductions.common.docstring import differences

DOC = """Paper 0: a title.

What is reproduced: something.

How it differs from the paper, and why:
- first bullet that is
  wrapped over two lines.
- second bullet.

Anything after the section.
"""


def test_bullets_are_read_whole_and_the_section_ends_at_a_blank_line():
    assert differences(DOC) == ["first bullet that is wrapped over two lines.", "second bullet."]


def test_a_docstring_without_the_section_has_no_differences():
    assert differences("Paper 0.\n\nNothing else.") == [] and differences(None) == []


def test_every_paper_package_states_its_differences_in_its_docstring():
    import importlib

    from reproductions.registry import default_registry
    for reproduction in default_registry().entries.values():
        module = importlib.import_module(reproduction.module)
        assert differences(module.__doc__), f"{reproduction.module} has no 'How it differs' section"
