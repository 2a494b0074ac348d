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
from sparkd.sizing import sizing  # noqa: E402

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


def memory(model: Model, utility_need: int | None) -> str:
    """Size, need and fit, as estimated before the model ran (sparkd/sizing.py)."""
    sized = sizing(model, None, None, None if model.role is not Role.MAIN else utility_need)
    if sized.need is None:
        return "- | - | -"
    size = f"{sized.weights / 1e9:.0f} GB" if sized.weights is not None else "-"
    fits = sized.fits
    where = "no" if fits is None or not fits.alone else "alone"
    if fits is not None and fits.beside_utility and model.role is Role.MAIN:
        where = "beside the utility"
    elif fits is not None and fits.alone and model.role is Role.UTILITY:
        where = "beside a main model"
    return f"{size} | {sized.need / 1e9:.0f} GB | {where}"


def row(model: Model, utility_need: int | None) -> str:
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
        f"{model.context_length:,} | {client:,} | {tools(model)} | {memory(model, utility_need)} | "
        f"{', '.join(flags) or '-'} | `{model.weights or '-'}` |"
    )


def render(catalogue: Catalogue) -> str:
    out = [
        "# Models",
        "",
        "Generated from the shipped catalogue by `scripts/models-doc.py`; a test fails when it is stale.",
        f"{len(catalogue.enabled())} of {len(catalogue)} models are enabled. Served context is what the engine",
        "accepts; client context is the ceiling to give clients (`sparkd export` uses it). Size is the",
        "weights' download, memory what the model takes while it runs (vLLM reserves its",
        "`--gpu-memory-utilization` of the Spark's 128 GB), and fits says whether it runs on a Spark",
        "beside the utility model or only alone: estimates, which `sparkd models` replaces with the",
        "hub's sizes once pulled and the measured need once the model ran.",
        "",
        CHOOSER,
    ]
    utility = catalogue.utility
    utility_need = sizing(utility, None, None, None).need if utility is not None else None
    for title, status in (
        ("Validated", Status.VALIDATED),
        ("Experimental", Status.EXPERIMENTAL),
        ("Disabled", Status.DISABLED),
    ):
        models = [m for m in catalogue if m.status is status]
        out += [
            f"## {title} ({len(models)})",
            "",
            "| Model | Status | Role | Engine | Served context | Client context | Tools | Size | Memory | Fits "
            "| Notes | Weights |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        out += [row(m, utility_need) for m in sorted(models, key=lambda m: (m.role is not Role.MAIN, m.id))]
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "models.md"
    out.write_text(render(load_catalogue()))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
