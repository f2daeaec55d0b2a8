"""Study files and the pipeline runner: describe a study once (``study.toml``), run it with one command."""

from hiddenpop.study.schema import Study, load_study

__all__ = ["Study", "load_study"]
