"""The recording handed from the Locust plugin to perfgate: file format, worker merge, failure kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfgate.measure.contract import (
    ENV_RESULT,
    ENV_RUN_TIME,
    ENV_STEP,
    MAX_ERROR_KINDS,
    EndpointRecording,
    PluginSettings,
    ProgressSnapshot,
    Recording,
    RecordingFormatError,
    RecordingMeta,
    StepLoad,
    describe_error,
    read_progress,
    read_recording,
    write_progress,
    write_recording,
)


def endpoint(name: str, n: int, kinds: list[str] | None = None, outcomes: list[int] | None = None):
    recording = EndpointRecording("GET", name, kinds=list(kinds or []))
    recording.start_times.extend(float(1000 + i) for i in range(n))
    recording.latencies_ms.extend(float(i) / 3 for i in range(n))
    recording.outcomes.extend(outcomes or [0] * n)
    return recording


def test_file_round_trip(tmp_path: Path) -> None:
    original = Recording(meta=RecordingMeta(test_start=1000.5, locust_request_count=7),
                         endpoints=[endpoint("/a", 4, ["boom"], [0, 1, 0, 1]), endpoint("/b", 3)])
    write_recording(tmp_path / "r.bin", original)
    loaded = read_recording(tmp_path / "r.bin")
    assert loaded.meta == original.meta
    assert loaded.request_count == 7
    for got, want in zip(loaded.endpoints, original.endpoints, strict=True):
        assert (got.name, got.kinds, got.start_times, got.latencies_ms, got.outcomes) == (
            want.name, want.kinds, want.start_times, want.latencies_ms, want.outcomes)
    assert not (tmp_path / "r.bin.tmp").exists()


def test_truncated_or_foreign_files_are_refused(tmp_path: Path) -> None:
    write_recording(tmp_path / "r.bin", Recording(meta=RecordingMeta(), endpoints=[endpoint("/a", 100)]))
    data = (tmp_path / "r.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[:-10])
    with pytest.raises(RecordingFormatError, match="truncated"):
        read_recording(tmp_path / "cut.bin")
    (tmp_path / "other.bin").write_bytes(b"hello")
    with pytest.raises(RecordingFormatError, match="not a perfgate recording"):
        read_recording(tmp_path / "other.bin")


def test_worker_messages_merge_and_remap_failure_kinds() -> None:
    master = endpoint("/a", 2, ["timeout"], [1, 0])
    worker = endpoint("/a", 3, ["HTTP 500", "timeout"], [2, 1, 0])
    master.extend(EndpointRecording.from_message(worker.to_message()))
    assert master.kinds == ["timeout", "HTTP 500"]
    # The worker's "timeout" (its code 2) is the master's code 1; its "HTTP 500" (code 1) becomes 2.
    assert list(master.outcomes) == [1, 0, 1, 2, 0]
    assert len(master) == 5 and list(master.start_times[2:]) == list(worker.start_times)


def test_failure_kinds_are_bounded() -> None:
    recording = EndpointRecording("GET", "/a")
    codes = {recording.failure_code(f"kind {i}") for i in range(MAX_ERROR_KINDS + 20)}
    assert len(recording.kinds) == MAX_ERROR_KINDS + 1
    assert recording.kinds[-1] == "other failures"
    assert max(codes) == MAX_ERROR_KINDS + 1


def test_failure_kinds_do_not_embed_request_urls() -> None:
    first = describe_error(Exception("URL http://127.0.0.1:43719/items/17: code=404"))
    second = describe_error(Exception("URL http://127.0.0.1:43719/items/99: code=404"))
    assert first == second == "Exception: URL <url>: code=404"
    assert describe_error("x" * 500).endswith("...") and len(describe_error("x" * 500)) == 160
    assert describe_error(TimeoutError()) == "TimeoutError"



def test_the_runs_facts_survive_the_file_and_say_whether_readiness_was_tracked(tmp_path: Path) -> None:
    facts = RecordingMeta(test_start=1.0, test_stop=9.5, workers=2, peak_users=40, users_ready=None,
                          readiness_tracked=True, locust_request_count=3, runner="MasterRunner", cpu_warning=True,
                          process_exit_code=1, unhandled_exceptions=[("ValueError: x", 2)])
    write_recording(tmp_path / "r.bin", Recording(meta=facts, endpoints=[]))
    assert read_recording(tmp_path / "r.bin").meta == facts
    # Never ready (None) is not the same as not tracked (no key in the file).
    assert "users_ready" in facts.to_dict()
    untracked = RecordingMeta(test_start=1.0)
    assert "users_ready" not in untracked.to_dict()
    assert not RecordingMeta.from_dict(untracked.to_dict()).readiness_tracked
    assert RecordingMeta.from_dict({"test_start": 1.0, "from_a_newer_plugin": 1}) == untracked


def test_plugin_settings_travel_through_the_environment(tmp_path: Path) -> None:
    step = StepLoad(users=20, spawn_rate=2.5, step_users=5, step_time_s=10, run_time_s=60)
    settings = PluginSettings(result_path=tmp_path / "r.bin", progress_path=None, run_time_s=60, step=step)
    env = settings.to_env()
    assert (
        env[ENV_STEP] == "20,2.5,5,10,60" and env[ENV_RUN_TIME] == "60" and env[ENV_RESULT] == str(tmp_path / "r.bin")
    )
    assert PluginSettings.from_env(env) == settings
    assert PluginSettings.from_env({}) == PluginSettings(result_path=None, progress_path=None)


def test_progress_snapshots_are_written_whole_and_unreadable_ones_are_none(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    assert read_progress(path) is None
    snapshot = ProgressSnapshot(time=5.0, test_start=1.0, users=3, requests=10, failures=1, current_rps=2.5,
                                current_p95_ms=None)
    write_progress(path, snapshot)
    assert read_progress(path) == snapshot and not (tmp_path / "progress.json.tmp").exists()
    path.write_text('{"time": 1')
    assert read_progress(path) is None


def test_a_same_moment_runs_sides_travel_through_the_environment_the_file_and_worker_messages(
        tmp_path: Path) -> None:
    settings = PluginSettings(result_path=None, progress_path=None,
                              duet=(("head", "http://127.0.0.1:5001"), ("base", "http://127.0.0.1:5002")))
    assert PluginSettings.from_env(settings.to_env()) == settings
    base, head = endpoint("/a", 2), endpoint("/a", 3)
    base.side, head.side = "base", "head"
    write_recording(tmp_path / "r.bin", Recording(meta=RecordingMeta(), endpoints=[base, head]))
    assert [(e.name, e.side, len(e)) for e in read_recording(tmp_path / "r.bin").endpoints] == [
        ("/a", "base", 2), ("/a", "head", 3)]
    assert EndpointRecording.from_message(head.to_message()).side == "head"
