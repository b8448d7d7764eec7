"""`trustprov line dashboard`'s bad input, and `cm report --html` (the audit report file)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from trustprov.link.farm import FarmLink

from .conftest import CliWorld
from .helpers import assert_error, ok, run


def _provisioned_with_a_failure(cw: CliWorld, tmp_path: Path) -> str:
    farm = cw.fresh_farm(tmp_path)
    with FarmLink(farm) as f:
        f.add_blank(bytes(range(16)), cw.a.cm_lot)  # a chip of no family: it fails
    argv = ["cm", "provision", "--farm", farm, "--lot", cw.a.cm_lot, "--software", cw.a.software]
    argv += ["--share", cw.a.share, "--bundle", cw.a.bundle, "--station", "line-1"]
    assert run(*argv).exit_code == 1
    return f"sqlite:///{tmp_path / 'records.sqlite'}"


def test_dashboard_bad_input_is_one_line(cw: CliWorld, tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'none.sqlite'}"
    assert_error(run("line", "dashboard", "--records", missing), exit_code=2, match="no records")
    assert not (tmp_path / "none.sqlite").exists()  # read-only: nothing created
    url = _provisioned_with_a_failure(cw, tmp_path)
    assert_error(run("line", "dashboard", "--records", url, "--listen", "8080"), exit_code=2)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRUSTPROV_DASHBOARD_TOKEN", "short")
        assert_error(
            run("line", "dashboard", "--records", url), exit_code=2, match="at least 16 characters"
        )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_error(
            run("line", "dashboard", "--records", url, "--listen", f"127.0.0.1:{port}"),
            exit_code=2,
            match="cannot listen",
        )


def test_report_html(cw: CliWorld, tmp_path: Path) -> None:
    url = _provisioned_with_a_failure(cw, tmp_path)
    doc = json.loads(ok("cm", "report", "--records", url, "--json").stdout)
    out = tmp_path / "audit.html"
    text = ok("cm", "report", "--records", url, "--html", out).stdout
    assert "audit report written to" in text
    html = out.read_text(encoding="utf-8")
    counts = dict(re.findall(r'<td data-count="([a-z_]+)">([^<]*)</td>', html))
    for key in ("chips", "provisioned", "already_provisioned", "failed", "pending", "in_progress"):
        assert counts[key] == str(doc[key]), key
    assert counts["yield_percent"] == f"{doc['yield_percent']} %"
    (code,) = doc["failures"]
    assert code in html  # the cause, in the chart and the table of latest failures
    assert bytes(range(16)).hex() in html  # the failed chip
    # the existing output rules: no silent replacement, nothing but a regular file
    assert_error(run("cm", "report", "--records", url, "--html", out), exit_code=2, match="exists")
    ok("cm", "report", "--records", url, "--html", out, "--force")
    assert_error(run("cm", "report", "--records", url, "--html", tmp_path), exit_code=2)
    missing_dir = tmp_path / "no" / "audit.html"
    assert_error(run("cm", "report", "--records", url, "--html", missing_dir), exit_code=2)
