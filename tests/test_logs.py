"""What reaches the terminal and the log file (issue 23)."""

from __future__ import annotations

import logging

from afni_group import logs


def test_detail_only_with_verbose_and_always_in_the_log_file(capsys, tmp_path):
    log = logging.getLogger("afni_group.test_logs")
    logs.configure_console(0)
    handler = logs.log_to_file(tmp_path / "run.log")
    try:
        log.log(logs.DETAIL, "++ Kernel function radius = 26.38 mm")
        log.info("++ 3dClustSim")
        assert capsys.readouterr().err == "++ 3dClustSim\n"
        handler.flush()
        assert "++ Kernel function radius = 26.38 mm" in (tmp_path / "run.log").read_text()
    finally:
        logging.getLogger("afni_group").removeHandler(handler)
        handler.close()
    logs.configure_console(1)  # -v
    log.log(logs.DETAIL, "++ Using 2 threads")
    assert "++ Using 2 threads" in capsys.readouterr().err
    logs.configure_console(0)


def test_every_warning_is_tagged_once(capsys):
    log = logging.getLogger("afni_group.test_logs")
    logs.configure_console(0)
    log.warning("cluster-size threshold %d voxels is not stable", 11)
    log.warning("!! %s not written", "clusters.tsv")
    log.warning("*+ WARNING: pthr=0.000200 ; desired alpha=0.100000")
    log.warning(" +        [further messages about alpha are suppressed]")
    log.error("** ERROR: bad")
    log.info("++ not a warning")
    assert capsys.readouterr().err.splitlines() == [
        "WARNING: cluster-size threshold 11 voxels is not stable",
        "WARNING: clusters.tsv not written",
        "*+ WARNING: pthr=0.000200 ; desired alpha=0.100000",
        "WARNING: [further messages about alpha are suppressed]",
        "** ERROR: bad",
        "++ not a warning",
    ]


def test_held_messages_pass_on_in_order_or_are_dropped(capsys):
    log = logging.getLogger("afni_group.test_logs")
    logs.configure_console(0)
    with logs.holding():
        log.info("++ found afni_proc results")
        log.warning("subject 03 has no mask")
        assert capsys.readouterr().err == ""  # held while the block runs
    assert capsys.readouterr().err.splitlines() == [
        "++ found afni_proc results",
        "WARNING: subject 03 has no mask",
    ]
    with logs.holding() as held:
        log.info("++ found afni_proc results")
        held.drop()
    assert capsys.readouterr().err == ""
    log.info("++ after")  # the console handler is back
    assert capsys.readouterr().err == "++ after\n"
