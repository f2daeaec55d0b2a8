import os
import stat

from hiddenpop.outputs import atomic_write_text


def test_atomic_write_respects_umask_and_leaves_no_temp(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "sub" / "out.json"
        atomic_write_text(target, "{}\n")
    finally:
        os.umask(old)
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]
