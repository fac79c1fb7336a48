"""`backupmanager tokens`: API tokens created, listed and revoked (SPEC §17)."""

from __future__ import annotations

import click

from backupmanager import tokens as token_service
from backupmanager.cli import Context, emit, main, pass_context
from backupmanager.clock import system_clock


@main.group()
def tokens() -> None:
    """API tokens (the X-BackupManager-Key header of /api/v1)."""


@tokens.command("create")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="Only GET requests (monitoring, dashboards).")
@pass_context
def tokens_create(ctx: Context, name: str, read_only: bool) -> None:
    """Create a token and print it once: it cannot be shown again."""
    new = token_service.create_token(ctx.database(), name, read_only=read_only, now=system_clock())

    def human() -> None:
        scope = "read-only" if new.read_only else "full access"
        click.echo(
            f"Token '{new.name}' created ({scope}). Copy it now: it is stored only as a hash "
            "and cannot be shown again. Send it in the X-BackupManager-Key header.",
            err=True,
        )
        click.echo(
            new.token
        )  # alone on stdout, so that TOKEN=$(backupmanager tokens create …) works

    emit(ctx, {"name": new.name, "token": new.token, "read_only": new.read_only}, human)


@tokens.command("list")
@click.option("--active", is_flag=True, help="Leave out revoked tokens.")
@pass_context
def tokens_list(ctx: Context, active: bool) -> None:
    """Every token: scope, creation, last use (to the minute), revocation. Never the token."""
    rows = token_service.list_tokens(ctx.database(), include_revoked=not active)

    def human() -> None:
        if not rows:
            click.echo("No API tokens. Create one with 'backupmanager tokens create NAME'.")
        for row in rows:
            state = "active" if row["active"] else f"revoked {row['revoked_at']}"
            click.echo(
                f"{row['name']:<24} {row['scope']:<10} created {row['created_at']}  "
                f"last used {row['last_used_at'] or 'never'}  {state}"
            )

    emit(ctx, rows, human)


@tokens.command("revoke")
@click.argument("name")
@pass_context
def tokens_revoke(ctx: Context, name: str) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    row = token_service.revoke_token(ctx.database(), name, now=system_clock())
    emit(ctx, row, lambda: click.echo(f"Token '{name}' revoked at {row['revoked_at']}."))
