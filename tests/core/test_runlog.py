"""Run folders and progress files: what the app and the dashboard read back."""
from chatbot.core.paths import Paths
from chatbot.core.runlog import RunLog, Stage, all_progress, latest_progress


def test_progress_is_read_back_newest_last_and_unreadable_files_are_skipped(tmp_path):
    runs = Paths(tmp_path).runs
    assert latest_progress(tmp_path) is None and all_progress(tmp_path) == []
    first, second = RunLog(runs), RunLog(runs)
    first.progress({"stage": Stage.DONE, "status": "promoted"})
    second.progress({"stage": Stage.TRAINING, "step": 3})
    first.close()
    second.close()
    assert [p["run"] for p in all_progress(tmp_path)] == [first.dir.name, second.dir.name]
    assert latest_progress(tmp_path)["step"] == 3 and latest_progress(tmp_path)["stage"] == "training"
    (second.dir / "progress.json").write_text("{torn")  # a newest file that cannot be read
    assert latest_progress(tmp_path)["run"] == first.dir.name
    assert [p["run"] for p in all_progress(tmp_path)] == [first.dir.name]
