"""Which mode an A/B or a calibration runs in: the duet by default, alternate pairs where it cannot split the load."""

from __future__ import annotations

import pytest

from perfgate.ab.session import settled_mode
from perfgate.config import AbConfig, AbMode, ResolvedProfile
from perfgate.config.schema import StepShape
from perfgate.errors import ConfigError

STEADY = ResolvedProfile(name="smoke", locustfile="/x/lf.py", host="http://127.0.0.1:{port}", users=10,
                         spawn_rate=10, run_time=20, warmup=2)
STEPPED = STEADY.model_copy(update={"step": StepShape(step_users=2, step_time=5)})
SHAPED = STEADY.model_copy(update={"load_shape": "Waves"})


def test_the_duet_is_the_default_and_a_steady_profile_keeps_it() -> None:
    said: list[str] = []
    settings = settled_mode(AbConfig(), STEADY, said.append)
    assert settings.mode is AbMode.DUET and settings.planned_looks() == [2, 4, 6] and said == []


@pytest.mark.parametrize(("profile", "what"), [(STEPPED, "a step load"), (SHAPED, "shape Waves")])
def test_a_profile_the_duet_cannot_split_falls_back_to_alternate_pairs_and_says_so(profile: ResolvedProfile,
                                                                                   what: str) -> None:
    said: list[str] = []
    settings = settled_mode(AbConfig(max_time="5m"), profile, said.append)
    assert settings.mode is AbMode.ALTERNATE and settings.planned_looks() == [3, 6, 10]
    assert settings.max_time == 300  # the rest of the settings kept
    assert len(said) == 1 and what in said[0] and "alternate" in said[0]


def test_a_duet_asked_for_is_refused_for_such_a_profile_and_settings_that_only_fit_the_duet_too() -> None:
    with pytest.raises(ConfigError, match="cannot run a step load.*--mode alternate"):
        settled_mode(AbConfig(mode="duet"), STEPPED, lambda _: None)
    with pytest.raises(ConfigError, match="needs the alternate mode.*--looks"):
        settled_mode(AbConfig(looks=[1, 2]), SHAPED, lambda _: None)
