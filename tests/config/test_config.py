"""Configuration: built-in profiles, config files, command-line overrides, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfgate.config import BUILTIN_PROFILES, Overrides, load_config, parse_duration
from perfgate.errors import ConfigError
from perfgate.records import LoadParameters


@pytest.mark.parametrize(("text", "seconds"), [
    (90, 90.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("1m 30s", 90.0),
    ("0.5s", 0.5),
])
def test_parse_duration(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5q", "m5", "-3", True, None, "1h-2m"])
def test_parse_duration_rejects(text) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_builtin_profiles_match_common_practice() -> None:
    assert {name: (p.users, p.spawn_rate, p.run_time) for name, p in BUILTIN_PROFILES.items()} == {
        "smoke": (5, 5, 15), "light": (10, 1, 60), "medium": (20, 2, 300), "heavy": (50, 5, 600),
        "spike": (100, 10, 180), "endurance": (50, 1, 1800),
    }


def test_no_file_means_defaults_and_cli_values(tmp_path: Path) -> None:
    loaded = load_config(start=tmp_path)
    assert loaded.source is None
    profile = loaded.resolve("light", Overrides(locustfile="lf.py", host="http://127.0.0.1:1", users=3))
    assert profile.users == 3 and profile.spawn_rate == 1 and profile.run_time == 60 and profile.warmup == 10
    assert loaded.db_path == tmp_path / ".perfgate" / "perfgate.db"


def test_file_overrides_builtin_and_cli_overrides_file(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "perfgate.toml").write_text(
        'locustfile = "load/lf.py"\nhost = "http://127.0.0.1:9"\ndb = "store/x.db"\n'
        '[profiles.light]\nusers = 15\nrun_time = "2m"\ntags = ["read"]\n'
        '[profiles.checkout]\nextends = "medium"\nuser_classes = { Buyer = 3, Browser = 1 }\n'
        'step = { step_users = 5, step_time = "30s" }\n')
    sub = tmp_path / "deep" / "er"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    loaded = load_config(start=sub)  # found by walking up
    assert loaded.source == tmp_path / "perfgate.toml"
    assert loaded.db_path == tmp_path / "store" / "x.db"
    light = loaded.resolve("light")
    assert (light.users, light.run_time, light.spawn_rate, light.tags) == (15, 120, 1, ["read"])
    assert light.locustfile == str(tmp_path / "load" / "lf.py")  # relative to the file
    cli = loaded.resolve("light", Overrides(users=4, run_time="30s", locustfile="mine.py"))
    assert (cli.users, cli.run_time) == (4, 30)
    assert cli.locustfile == str(sub / "mine.py")  # relative to the working folder
    checkout = loaded.resolve("checkout")
    assert checkout.users == 20 and checkout.user_classes == {"Buyer": 3, "Browser": 1}
    assert checkout.step is not None and checkout.step.step_time == 30


def test_pyproject_tool_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.perfgate]\nprofile = "light"\n'
                                             'host = "http://127.0.0.1:5"\nlocustfile = "a.py"\n')
    loaded = load_config(start=tmp_path)
    assert loaded.source == tmp_path / "pyproject.toml"
    assert loaded.resolve().name == "light"


def test_pyproject_without_tool_table_is_not_a_config(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config(start=tmp_path).source is None


def test_wrong_field_in_pyproject_names_the_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.perfgate.profiles.light]\nspawn_rate = "fast"\n')
    with pytest.raises(ConfigError, match=r"pyproject.toml: tool.perfgate.profiles.light.spawn_rate: .*'fast'"):
        load_config(start=tmp_path)


@pytest.mark.parametrize(("body", "message"), [
    ("users = [", "invalid TOML"),
    ('[profiles.smoke]\nrun_time = "soon"\n', "profiles.smoke.run_time"),
    ("unknown_key = 1\n", "unknown_key: Extra inputs are not permitted"),
    ('[serve]\nready_url = "http://x"\n', "serve.command: Field required"),
])
def test_file_errors_are_one_line_naming_file_and_field(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "perfgate.toml").write_text(body)
    with pytest.raises(ConfigError) as caught:
        load_config(start=tmp_path)
    text = str(caught.value)
    assert "\n" not in text and str(tmp_path / "perfgate.toml") in text and message in text


def test_resolution_errors(tmp_path: Path) -> None:
    (tmp_path / "perfgate.toml").write_text('[profiles.mine]\nusers = 3\n')
    loaded = load_config(start=tmp_path)
    with pytest.raises(ConfigError, match="unknown profile 'nope'; choose one of: .*light"):
        loaded.resolve("nope")
    with pytest.raises(ConfigError) as missing:
        loaded.resolve("mine")
    text = str(missing.value)
    assert "None" not in text and "\n" not in text
    assert "profiles.mine: profile 'mine' is not built in, so it needs extends = one of: smoke, light" in text
    (tmp_path / "perfgate.toml").write_text('[profiles.mine]\nextends = "ligth"\n')
    with pytest.raises(ConfigError, match=r"profiles.mine.extends = 'ligth' is not a built-in profile; "
                                          r"extend one of: smoke, light, medium"):
        load_config(start=tmp_path).resolve("mine")
    # As in Locust: no -f is ./locustfile.py, and no host is the User classes' own (read when the run starts).
    default = loaded.resolve("smoke")
    assert default.locustfile == str((Path.cwd() / "locustfile.py").resolve())
    assert (default.host, default.host_from_user_classes) == ("", True)
    with pytest.raises(ConfigError, match="warm-up .* must be shorter than the run time"):
        loaded.resolve("smoke", Overrides(locustfile="x.py", host="http://h", run_time=5, warmup=5))


def test_explicit_config_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


def test_load_parameters_exclude_what_does_not_change_the_load(tmp_path: Path) -> None:
    loaded = load_config(start=tmp_path)
    a = loaded.resolve("smoke", Overrides(locustfile="a.py", host="http://127.0.0.1:1"))
    b = loaded.resolve("smoke", Overrides(locustfile="a.py", host="http://127.0.0.1:2", processes=2))
    c = loaded.resolve("smoke", Overrides(locustfile="a.py", host="http://127.0.0.1:1", users=6))
    assert a.load_parameters() == b.load_parameters() != c.load_parameters()


def test_serve_from_file_and_command_line(tmp_path: Path) -> None:
    (tmp_path / "perfgate.toml").write_text('locustfile = "a.py"\n[serve]\ncommand = "svc --port {port}"\n'
                                            'ready_url = "http://127.0.0.1:{port}/up"\n')
    loaded = load_config(start=tmp_path)
    serve = loaded.serve(ready_timeout=5)
    assert (serve.command, serve.ready_url, serve.ready_timeout) == ("svc --port {port}",
                                                                    "http://127.0.0.1:{port}/up", 5)
    # A command from the command line (another path to the same service, in CI say) keeps the file's URL.
    assert loaded.serve("other {port}").ready_url == "http://127.0.0.1:{port}/up"
    assert loaded.serve("other {port}", ready_url="http://127.0.0.1:{port}/h").ready_url == "http://127.0.0.1:{port}/h"
    # A served profile without a host loads the service's own port.
    assert loaded.resolve(served=True).host == "http://127.0.0.1:{port}"
    assert loaded.resolve().host_from_user_classes


def test_ready_url_without_a_service_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--ready-url and --ready-timeout need --serve"):
        load_config(start=tmp_path).serve(ready_url="http://127.0.0.1:1/")


def test_cli_overrides_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="^--spawn-rate: Input should be greater than 0$"):
        Overrides.from_cli(spawn_rate=0)


def test_load_parameters_keep_their_dict_and_json_and_read_older_ones(tmp_path: Path) -> None:
    loaded = load_config(start=tmp_path)
    plain = loaded.resolve("smoke", Overrides(locustfile="a.py", host="http://127.0.0.1:1"))
    keys = ["users", "spawn_rate", "run_time", "warmup", "user_classes", "tags", "exclude_tags", "step", "target_rps"]
    assert list(plain.load_parameters()) == keys  # the optional keys appear only when set
    assert json.loads(LoadParameters.of(plain).model_dump_json()) == plain.load_parameters()
    shaped = plain.model_copy(update={"locust_args": ["--foo"], "load_shape": "Waves"})
    assert list(shaped.load_parameters()) == [*keys, "locust_args", "load_shape"]
    typed = LoadParameters.of(shaped)
    assert (typed.locust_args, typed.load_shape) == (["--foo"], "Waves")
    assert typed.as_dict() == shaped.load_parameters()
    # What older runs and baseline files hold (no optional keys) reads back as the same parameters.
    assert LoadParameters.model_validate(plain.load_parameters()) == LoadParameters.of(plain)


def test_ab_mode_sets_its_own_default_looks_and_the_alternate_mode_needs_two_pairs(tmp_path: Path) -> None:
    from perfgate.config import AbConfig, AbMode

    assert AbConfig().mode is AbMode.DUET and "mode" not in AbConfig().model_fields_set  # the default
    assert AbConfig().planned_looks() == [2, 4, 6]
    assert AbConfig(mode=AbMode.ALTERNATE).planned_looks() == [3, 6, 10]
    assert AbConfig(mode="duet", looks=[1, 3], max_pairs=5).planned_looks() == [1, 3, 5]
    (tmp_path / "perfgate.toml").write_text('[ab]\nmode = "duet"\nlooks = [1, 2]\n')
    loaded = load_config(start=tmp_path)
    assert loaded.ab_settings().mode is AbMode.DUET
    with pytest.raises(ConfigError, match="--mode.*2 pairs|2 pairs.*--mode|at least 2 pairs"):
        loaded.ab_settings(mode="alternate")
    with pytest.raises(ConfigError, match="--mode"):
        loaded.ab_settings(mode="together")
