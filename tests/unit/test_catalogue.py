from __future__ import annotations

from pathlib import Path

import pytest

from sparkd.catalogue import (
    AUTO_PORT_RANGE,
    CatalogueError,
    Engine,
    Role,
    Status,
    ToolSupport,
    load_catalogue,
)

MINIMAL = """
[models.alpha]
image = "localhost/alpha:latest"
weights = "org/alpha"
context_length = 4096
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    directory = tmp_path / "shipped"
    write(directory, "a.toml", MINIMAL)
    return directory


def load_error(shipped: Path, dropins: Path | None = None) -> CatalogueError:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(shipped, dropins)
    return caught.value


class TestShippedCatalogue:
    def test_carries_every_original_model_and_the_demo(self) -> None:
        catalogue = load_catalogue()
        assert len(catalogue) == 43
        assert len(catalogue.enabled()) == 34
        assert catalogue.resolve("demo") is not None

    def test_the_demo_is_off_until_its_install_turns_it_on(self, tmp_path: Path) -> None:
        """On a Spark it would only crowd /v1/models; `sparkd demo install` writes a drop-in."""
        from sparkd import demo

        assert not load_catalogue().models["demo"].enabled
        demo.enable(tmp_path, log=lambda _: None)
        demo.enable(tmp_path, log=lambda _: None)  # once is enough; a second run changes nothing
        assert load_catalogue(dropin_dir=tmp_path).models["demo"].enabled

    def test_keeps_the_originals_lifecycle_roles(self) -> None:
        catalogue = load_catalogue()
        exclusive = {m.id for m in catalogue if m.role is Role.EXCLUSIVE}
        assert exclusive == {
            "gemma4-31b",
            "qwen3.5-122b-a10b-int4-autoround",
            "jackrong-qwen3.5-35b-a3b-claude-4.6-opus-reasoning-distilled",
            "qwen3-coder-next-int4-autoround",
        }
        utility = catalogue.utility
        assert utility is not None
        assert (utility.id, utility.engine, utility.keep_warm) == ("qwen3.5-0.8b", Engine.SGLANG, True)

    def test_keeps_the_originals_status(self) -> None:
        catalogue = load_catalogue()
        validated = {m.id for m in catalogue if m.status is Status.VALIDATED}
        assert validated == {"gpt-oss-20b", "gpt-oss-120b", "glm-4.7-flash-awq", "qwen3.5-0.8b"}
        assert sum(m.status is Status.EXPERIMENTAL for m in catalogue) == 30
        disabled = {m.id for m in catalogue if m.status is Status.DISABLED}
        assert "deepseek-ocr" in disabled
        assert len(disabled) == 9  # the originals' 8 and the demo, off until installed

    def test_moves_the_validators_id_rules_into_fields(self) -> None:
        catalogue = load_catalogue()
        llama = catalogue.resolve("llama-3.3-70b-instruct-fp4")
        assert llama is not None
        assert llama.rewrites.strict_alternation and llama.rewrites.llama_tool_guard
        qwen36 = catalogue.resolve("qwen3.6-27b-fp8")
        assert qwen36 is not None
        assert qwen36.rewrites.binary_thinking and qwen36.rewrites.thinking_off_by_default
        assert qwen36.rewrites.safety_buffer_tokens == 4096
        coder = catalogue.resolve("qwen2.5-coder-7b-instruct")
        assert coder is not None
        assert coder.tool_support is ToolSupport.FORCE_REQUIRED
        vl = catalogue.resolve("qwen2.5-vl-7b")
        assert vl is not None
        assert (vl.tool_support, vl.multimodal) == (ToolSupport.NONE, True)

    def test_picks_the_served_context_where_the_original_disagreed(self) -> None:
        catalogue = load_catalogue()
        vl30 = catalogue.resolve("qwen3-vl-30b-instruct")
        big = catalogue.resolve("qwen3.5-122b-a10b-int4-autoround")
        assert vl30 is not None and big is not None
        assert vl30.context_length == 32768
        assert big.context_length == 262144

    def test_no_engine_is_told_a_placeholder_key_or_how_to_listen(self) -> None:
        for model in load_catalogue():
            assert "VLLM_API_KEY" not in model.environment
            assert not {"--host", "--port", "--served-model-name", "--max-model-len"} & set(model.args)

    def test_ports_are_unique(self) -> None:
        ports = [m.engine_port for m in load_catalogue()]
        assert len(ports) == len(set(ports))


class TestDropIns:
    def test_override_replaces_values_and_merges_tables(self, shipped: Path, tmp_path: Path) -> None:
        write(shipped, "b.toml", MINIMAL.replace("alpha", "beta") + '[models.beta.environment]\nA = "1"\n')
        dropins = tmp_path / "models.d"
        write(
            dropins,
            "local.toml",
            """
[models.beta]
context_length = 8192
args = ["--enforce-eager"]
[models.beta.environment]
B = "2"
""",
        )
        beta = load_catalogue(shipped, dropins).resolve("beta")
        assert beta is not None
        assert beta.context_length == 8192
        assert beta.args == ("--enforce-eager",)
        assert beta.environment == {"A": "1", "B": "2"}

    def test_a_new_id_adds_a_model(self, shipped: Path, tmp_path: Path) -> None:
        dropins = tmp_path / "models.d"
        write(dropins, "mine.toml", MINIMAL.replace("alpha", "mine") + 'aliases = ["my-model"]\n')
        catalogue = load_catalogue(shipped, dropins)
        assert catalogue.resolve("my-model") is catalogue.resolve("mine")

    def test_a_missing_directory_means_no_drop_ins(self, shipped: Path, tmp_path: Path) -> None:
        assert len(load_catalogue(shipped, tmp_path / "absent")) == 1


class TestErrorsNameFileModelAndField:
    def test_unknown_key(self, shipped: Path, tmp_path: Path) -> None:
        dropin = write(tmp_path / "d", "typo.toml", "[models.alpha]\ncontext_lenght = 10\n")
        error = load_error(shipped, tmp_path / "d")
        assert (error.file, error.model_id, error.field) == (dropin, "alpha", "context_lenght")
        assert str(error).startswith(f"{dropin}: model 'alpha': field 'context_lenght':")

    def test_wrong_type_blames_the_file_that_set_it(self, shipped: Path, tmp_path: Path) -> None:
        dropin = write(tmp_path / "d", "bad.toml", '[models.alpha]\nidle_timeout = "soon"\n')
        error = load_error(shipped, tmp_path / "d")
        assert (error.file, error.model_id, error.field) == (dropin, "alpha", "idle_timeout")
        assert "duration" in error.message

    def test_missing_required_field(self, tmp_path: Path) -> None:
        path = write(tmp_path / "s", "x.toml", '[models.x]\nimage = "i"\nweights = "w"\n')
        error = load_error(tmp_path / "s")
        assert (error.file, error.model_id, error.field) == (path, "x", "context_length")

    def test_duplicate_id_across_shipped_files(self, shipped: Path) -> None:
        again = write(shipped, "z.toml", MINIMAL)
        error = load_error(shipped)
        assert (error.file, error.model_id) == (again, "alpha")

    def test_duplicate_alias(self, shipped: Path, tmp_path: Path) -> None:
        write(
            tmp_path / "d",
            "x.toml",
            MINIMAL.replace("[models.alpha]", "[models.other]") + 'aliases = ["alpha"]\n',
        )
        error = load_error(shipped, tmp_path / "d")
        assert (error.model_id, error.field) == ("other", "aliases")

    def test_broken_toml_names_the_file(self, shipped: Path, tmp_path: Path) -> None:
        dropin = write(tmp_path / "d", "broken.toml", "[models.alpha\n")
        error = load_error(shipped, tmp_path / "d")
        assert error.file == dropin
        assert "not valid TOML" in error.message

    def test_id_unfit_for_a_unit_name(self, tmp_path: Path) -> None:
        write(tmp_path / "s", "x.toml", MINIMAL.replace("[models.alpha]", '[models."has space"]'))
        assert load_error(tmp_path / "s").field == "id"

    def test_generic_engine_without_command(self, tmp_path: Path) -> None:
        write(tmp_path / "s", "x.toml", MINIMAL + 'engine = "generic"\n')
        assert "command" in load_error(tmp_path / "s").message

    def test_two_models_on_one_port(self, tmp_path: Path) -> None:
        write(tmp_path / "s", "a.toml", MINIMAL + "port = 20000\n")
        write(tmp_path / "s", "b.toml", MINIMAL.replace("alpha", "beta") + "port = 20000\n")
        assert load_error(tmp_path / "s").field == "port"

    def test_two_enabled_utilities(self, tmp_path: Path) -> None:
        write(tmp_path / "s", "a.toml", MINIMAL + 'role = "utility"\n')
        write(tmp_path / "s", "b.toml", MINIMAL.replace("alpha", "beta") + 'role = "utility"\n')
        assert "utility" in load_error(tmp_path / "s").message


def test_models_without_a_port_get_one_from_the_automatic_range(shipped: Path) -> None:
    alpha = load_catalogue(shipped).resolve("alpha")
    assert alpha is not None
    assert alpha.engine_port == AUTO_PORT_RANGE[0]


def test_close_matches_suggest_what_the_client_may_have_meant() -> None:
    assert "gpt-oss-20b" in load_catalogue().close_matches("gpt-oss-2b")
