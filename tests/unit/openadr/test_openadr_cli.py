"""`gridledger openadr` without a network, or for an organisation that commands nobody: one clear error line."""

from click.testing import CliRunner

from cli import main


def test_serving_without_a_network_says_how_to_start_one(tmp_path):
    result = CliRunner().invoke(main, ["openadr", "serve", "--org", "TSO", "--run-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no network in") and "Traceback" not in result.output + result.stderr


def test_a_ven_certificate_needs_a_network_too(tmp_path):
    result = CliRunner().invoke(main, ["openadr", "ven-certificate", "--org", "RA1", "--run-dir", str(tmp_path)])
    assert result.exit_code == 1 and "gridledger network up" in result.stderr
