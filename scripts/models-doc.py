#!/usr/bin/env python3
"""Write docs/models.md from the shipped catalogue (a unit test fails when it is stale).

scripts/models-doc.py [OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sparkd.catalogue import Catalogue, Model, Role, Status, ToolSupport, load_catalogue  # noqa: E402

CHOOSER = """\
## Quick chooser

| You want | Start with | Why |
|---|---|---|
| To try sparkd, no GPU | `demo` | SmolLM2-135M on the CPU build of vLLM; starts in about 30 s anywhere. |
| A dependable default for chat and coding agents | `gpt-oss-20b` | Validated by the original stack; fast MXFP4 on GB10; tools and reasoning. |
| The strongest validated model | `gpt-oss-120b` | Validated; the biggest dense-quality option that fits beside the utility. |
| Long agent sessions (OpenCode, Cline) | `qwen3.6-35b-a3b-fp8-mtp` | The original's "current best" for text and tools; 240k client context; MTP doubles speed. |
| Images in the prompt | `gemma4-26b-a4b` | Multimodal, tools, 240k client context. |
| Very long code contexts | `qwen3-coder-next-int4-autoround` | 524k client context; exclusive (the utility steps aside). |
| Titles and summaries next to a main model | `qwen3.5-0.8b` (utility) | Kept warm beside any non-exclusive model. |

Experimental models ran in the original stack but were not validated there; disabled
ones are kept for reference (`status = "experimental"` in a drop-in enables one).
"""


def tools(model: Model) -> str:
    return {ToolSupport.FULL: "yes", ToolSupport.NONE: "no", ToolSupport.FORCE_REQUIRED: "forced"}[
        model.tool_support
    ]


def row(model: Model) -> str:
    client = model.client_context or model.context_length
    flags = []
    if model.multimodal:
        flags.append("images")
    if model.rewrites.binary_thinking or model.rewrites.thinking_off_by_default:
        flags.append("thinking off by default")
    if model.rewrites.strict_alternation:
        flags.append("strict roles")
    return (
        f"| `{model.id}` | {model.status.value} | {model.role.value} | {model.engine.value} | "
        f"{model.context_length:,} | {client:,} | {tools(model)} | {', '.join(flags) or '-'} | "
        f"`{model.weights or '-'}` |"
    )


def render(catalogue: Catalogue) -> str:
    out = [
        "# Models",
        "",
        "Generated from the shipped catalogue by `scripts/models-doc.py`; a test fails when it is stale.",
        f"{len(catalogue.enabled())} of {len(catalogue)} models are enabled. Served context is what the engine",
        "accepts; client context is the ceiling to give clients (`sparkd export` uses it).",
        "",
        CHOOSER,
    ]
    for title, status in (
        ("Validated", Status.VALIDATED),
        ("Experimental", Status.EXPERIMENTAL),
        ("Disabled", Status.DISABLED),
    ):
        models = [m for m in catalogue if m.status is status]
        out += [
            f"## {title} ({len(models)})",
            "",
            "| Model | Status | Role | Engine | Served context | Client context | Tools | Notes | Weights |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        out += [row(m) for m in sorted(models, key=lambda m: (m.role is not Role.MAIN, m.id))]
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "models.md"
    out.write_text(render(load_catalogue()))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
