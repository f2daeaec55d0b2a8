def test_version_and_help(run_cli):
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("hiddenpop ")
    result = run_cli("--help")
    assert result.returncode == 0 and "nsum" in result.stdout


def test_unknown_command_exits_2(run_cli):
    result = run_cli("no-such-family")
    assert result.returncode == 2
