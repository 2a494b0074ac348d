from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "original-models.json"


def test_the_shipped_catalogue_is_the_import_of_the_original_models() -> None:
    """sparkd/models/*.toml (but demo.toml) are generated: change the importer, not the files."""
    if not REFERENCE.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{REFERENCE} is missing")
        pytest.skip(f"{REFERENCE} is not beside this checkout")
    spec = importlib.util.spec_from_file_location("importer", ROOT / "scripts" / "import-original-models.py")
    assert spec is not None and spec.loader is not None
    importer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(importer)
    generated = importer.generate(REFERENCE)
    shipped = {
        p.name: p.read_text() for p in (ROOT / "sparkd" / "models").glob("*.toml") if p.name != "demo.toml"
    }
    assert sorted(generated) == sorted(shipped)
    stale = [name for name in generated if generated[name] != shipped[name]]
    assert not stale, f"re-run scripts/import-original-models.py: {stale} differ"


def test_the_models_page_matches_the_catalogue() -> None:
    """docs/models.md is generated: run scripts/models-doc.py after changing the catalogue."""
    spec = importlib.util.spec_from_file_location("models_doc", ROOT / "scripts" / "models-doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from sparkd.catalogue import load_catalogue

    assert (ROOT / "docs" / "models.md").read_text() == module.render(load_catalogue())


def test_the_configuration_reference_matches_the_code() -> None:
    """docs/configuration.md's settings and field tables are written by scripts/reference-doc.py."""
    spec = importlib.util.spec_from_file_location("reference_doc", ROOT / "scripts" / "reference-doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert module.render(text) == text, "run scripts/reference-doc.py"
    assert "| `fit_gate` |" in text and "| `loading_progress` |" in text and "| `api_families` |" in text
