"""The ``survey`` command as installed: the knowledge base's commands (``survey.cli``) and ``serve``,
which starts the explorer on the corpus. It is wired here, where both are seen, so that nothing in
``survey`` imports ``app``.
"""

from __future__ import annotations

import click

from survey.cli import _bib_paths, _user_errors, bib_option, main


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 exposes the explorer to your network, on purpose only.")
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Another host name (or address) the explorer answers to, besides 127.0.0.1, localhost, ::1 "
                   "and --host. Repeatable.")
@click.option("--token", envvar="SURVEY_TOKEN", show_envvar=True,
              help="The key for writes (and, off loopback, for every page); random by default.")
@click.option("--read-only", is_flag=True, help="Serve the corpus with every write (papers, tags, answers) refused.")
@click.option("--max-upload", default=50, show_default=True, type=click.FloatRange(min=0, min_open=True),
              metavar="MB", help="The largest .bib file an upload may be.")
@click.option("--debug", is_flag=True, help="Dash's debug mode on Flask's development server: reloads on code "
                                            "changes, shows errors in the page.")
@bib_option
@click.pass_context
@_user_errors
def serve(ctx, host: str, port: int, allow_hosts: tuple[str, ...], token: str | None, read_only: bool,
          max_upload: float, debug: bool) -> None:
    """Start the explorer in the browser on the corpus (http://127.0.0.1:8050 by default).

    It prints the address to open first, which carries the token: the browser keeps it as a cookie."""
    # Dash and Flask load only for this command: `survey --help` must not wait for them
    # (tests/test_load_cache.py::test_help_imports_no_pandas checks the installed entry point)
    from app.main import serve as serve_app
    from app.security import Access, start_url

    access = Access.for_bind(host, token, allow_hosts, read_only, max_upload)
    click.echo(f"Survey explorer on {start_url(host, port, access.token)}  (Ctrl+C to stop)", err=True)
    if not access.loopback:
        click.echo(f"Off loopback: every page needs the token; host names served: {', '.join(sorted(access.hosts))} "
                   "(add more with --allow-host).", err=True)
    serve_app(_bib_paths(ctx), host=host, port=port, access=access, debug=debug)


if __name__ == "__main__":
    main()
