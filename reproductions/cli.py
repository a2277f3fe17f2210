"""The ``reproduce`` command: ``reproduce list`` and one subcommand per reproduction.

Which reproductions exist comes from the corpus: every reviewed paper names its reproduction
(``reproduction = {paper5}``). A paper whose module is not written yet says so and exits with
status 2 rather than pretending to run.
"""

from __future__ import annotations

import functools
import importlib.util

import click

from survey.corpus import load_corpus

NOT_IMPLEMENTED = 2  # exit status of a reproduction that has no module yet


@functools.cache
def planned() -> dict[str, tuple[str, str]]:
    """``{name: (bib key, review topic)}`` for each reproduction the corpus names, in review order."""
    table = load_corpus().table
    named = table[table["reproduction"].notna()].sort_values("review_number")
    return {r.reproduction: (r.key, r.review_topic or r.title) for r in named.itertuples()}


def implemented(name: str) -> bool:
    return importlib.util.find_spec(f"reproductions.{name}") is not None


def reproduction_command(name: str, key: str, topic: str) -> click.Command:
    def run() -> None:
        if not implemented(name):
            click.echo(f"{name} ({key}): no reproduction module has been written yet; nothing was run.",
                       err=True)
            raise SystemExit(NOT_IMPLEMENTED)
        raise click.ClickException(f"{name}: reproductions/{name}.py exists but the run plumbing "
                                   "(profiles, devices, run folders) is not in place yet")
    return click.Command(name, callback=run, help=f"Reproduce [{key}]: {topic}.")


class ReproductionGroup(click.Group):
    """Fixed commands plus one command per reproduction named in the corpus."""

    def list_commands(self, ctx):
        return [*super().list_commands(ctx), *planned()]

    def get_command(self, ctx, name):
        if name in planned():
            return reproduction_command(name, *planned()[name])
        return super().get_command(ctx, name)


@click.group(cls=ReproductionGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run the reproductions of the reviewed papers and regenerate their figures and metrics."""


@main.command("list")
def list_() -> None:
    """List the reproductions the corpus names and whether each can be run yet."""
    for name, (key, topic) in planned().items():
        state = "available" if implemented(name) else "not implemented yet"
        click.echo(f"{name:<8} {key:<26} {state:<20} {topic}")


if __name__ == "__main__":
    main()
