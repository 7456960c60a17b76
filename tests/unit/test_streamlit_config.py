"""The portal's Streamlit settings that the first click's speed depends on (issue 18)."""

import os
import tomllib
from pathlib import Path

from streamlit import config

ROOT = Path(__file__).resolve().parents[2]


def test_no_full_garbage_collection_after_every_script_run() -> None:
    # Streamlit's default collects all generations after each run, fragment polls included
    assert tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["runner"]["postScriptGC"] is False


def test_streamlit_reads_the_setting_from_the_repo_root() -> None:
    # a renamed or dropped option would be ignored silently: Streamlit must know it and take it
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)  # where `make run` starts the portal
        config.get_config_options(force_reparse=True)
        assert config.get_option("runner.postScriptGC") is False
    finally:
        os.chdir(cwd)
        config.get_config_options(force_reparse=True)
