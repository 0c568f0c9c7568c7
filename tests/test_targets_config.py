"""Targets from edgeprof.toml: board profiles, groups and globs, ~/.ssh/config, and the errors users get."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeprof._toml import dumps_string
from edgeprof.errors import TargetError
from edgeprof.profile import ProfileOptions
from edgeprof.targets import (
    NAME_PATTERN,
    apply_sensor_defaults,
    board_kinds,
    board_profile,
    load_config,
    resolve_target,
    select_targets,
)
from edgeprof.transports.ssh import resolve_endpoint
from tests.conftest import run_cli

KINDS = ["android-termux", "coral-devboard", "jetson-nano", "jetson-orin-nano", "linux", "rpi3", "rpi4", "rpi5"]

LAB = """
[targets.lab-1]
kind = "rpi4"
host = "10.0.0.11"
user = "pi"

[targets.lab-2]
kind = "rpi5"
host = "10.0.0.12"

[targets.orin]
kind = "jetson-orin-nano"
host = "orin"
python = "/opt/py/bin/python3"

[groups]
pis = ["lab-*"]
everything = ["lab-1", "orin", "local"]
"""


def test_every_board_kind_ships_with_its_defaults() -> None:
    assert board_kinds() == KINDS
    for kind in KINDS:
        profile = board_profile(kind)
        assert profile["description"] and profile["python"] and profile["workdir"], kind
        assert profile["workdir_max_mb"] > 0, kind
        assert "energy" in profile["sensors"], kind
        assert profile["facts"], kind
        assert "packages" in profile["setup"], kind
    assert board_profile("rpi5")["sensors"]["energy"] == "rpi5-pmic"
    assert board_profile("jetson-nano")["python"] == "python3.8"  # L4T R32's own Python 3.6 is too old
    assert board_profile("android-termux")["transport"] == "adb"


def test_config_targets_groups_and_globs(isolated: Path) -> None:
    (isolated / "edgeprof.toml").write_text(LAB)
    config = load_config()
    assert sorted(config.targets) == ["lab-1", "lab-2", "orin"]
    pi = config.targets["lab-1"]
    assert (pi.kind, pi.host, pi.user, pi.python, pi.python_is_default) == ("rpi4", "10.0.0.11", "pi", "python3", True)
    assert pi.workdir_max_mb == board_profile("rpi4")["workdir_max_mb"] and pi.groups == ("pis", "everything")
    assert config.targets["orin"].python == "/opt/py/bin/python3" and not config.targets["orin"].python_is_default
    (isolated / "home.toml").write_text('[targets.pi]\nhost = "x"\nworkdir = "~/edgeprof-work"\n')
    assert load_config(isolated / "home.toml").targets["pi"].workdir == "edgeprof-work"  # ~ is the remote home
    assert [t.name for t in select_targets(["pis"])] == ["lab-1", "lab-2"]
    assert [t.name for t in select_targets(["lab-*"])] == ["lab-1", "lab-2"]
    assert [t.name for t in select_targets(["orin,lab-2", "lab-*"])] == ["orin", "lab-2", "lab-1"]  # order, no repeats
    assert [t.name for t in select_targets(["everything"])] == ["lab-1", "orin", "local"]
    with pytest.raises(TargetError, match="no target matches 'jetson-\\*'"):
        select_targets(["jetson-*"])
    with pytest.raises(TargetError, match="unknown target 'lab-3'") as info:
        resolve_target("lab-3")
    assert "edgeprof targets add" in info.value.fix


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[targets.pi]\nhost = "x"\npassword = "hunter2"\n', "never stores passwords"),
        ('[targets.pi]\nhost = "x"\nhostname = "y"\n', "unknown setting 'hostname'"),
        ('[targets.pi]\nkind = "rpi9"\nhost = "x"\n', "unknown board kind 'rpi9'"),
        ('[targets.pi]\nkind = "linux"\n', "has no host"),
        ('[targets.pi]\nhost = "x"\nport = 70000\n', "out of range"),
        ('[targets.pi]\nhost = "x"\nworkdir = "~pi/x"\n', "relative to the home"),
        ('[targets.local]\nhost = "x"\n', "built in"),
        ('[targets."a b"]\nhost = "x"\n', "not allowed"),
        ('[targets.pi]\nhost = "x"\n[groups]\nlab = ["nothing-*"]\n', "matches no target"),
        ("[targets.pi\n", "cannot read"),
    ],
)
def test_bad_config_is_one_clear_line(isolated: Path, text: str, message: str) -> None:
    (isolated / "edgeprof.toml").write_text(text)
    with pytest.raises(TargetError, match=message) as info:
        load_config()
    assert "\n" not in str(info.value)
    done = run_cli("targets", "list")
    assert done.returncode == 2 and done.stderr.startswith("edgeprof: error: ") and message in done.stderr


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(name=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80))
def test_only_plain_target_names_are_accepted(isolated: Path, name: str) -> None:
    """Names reach terminals, the store and lock files: escape sequences, slashes and quotes are refused."""
    key = dumps_string(name)  # a quoted TOML key can hold anything
    (isolated / "edgeprof.toml").write_text(f'[targets.{key}]\nhost = "192.0.2.1"\n')
    try:
        config = load_config()
    except TargetError as exc:
        assert "\n" not in str(exc).replace(repr(name), "")
        return
    assert list(config.targets) == [name]
    assert NAME_PATTERN.fullmatch(name) and name != "local"


def test_cli_add_list_show(isolated: Path, tmp_path: Path) -> None:
    done = run_cli("targets", "add", "kitchen-pi", "--kind", "rpi4", "--host", "192.0.2.7", "--user", "pi")
    assert done.returncode == 0, done.stderr
    assert "edgeprof targets trust kitchen-pi" in done.stdout
    again = run_cli("targets", "add", "kitchen-pi", "--host", "192.0.2.8")
    assert again.returncode == 2 and "already has a target" in again.stderr
    bad = run_cli("targets", "add", "pi;reboot", "--host", "192.0.2.8")
    assert bad.returncode == 2 and "not allowed" in bad.stderr
    listed = json.loads(run_cli("targets", "list", "--json").stdout)
    names = {t["name"]: t for t in listed["targets"]}
    assert names["kitchen-pi"]["kind"] == "rpi4" and names["kitchen-pi"]["host"] == "192.0.2.7"
    assert "local" in names
    shown = json.loads(run_cli("targets", "show", "kitchen-pi", "--json").stdout)
    assert shown["ssh"]["hostname"] == "192.0.2.7" and shown["ssh"]["user"] == "pi" and shown["ssh"]["port"] == 22
    # --config points elsewhere; a missing file named explicitly is an error, not an empty config
    other = tmp_path / "other.toml"
    other.write_text('[targets.far]\nhost = "192.0.2.9"\n')
    listed = run_cli("targets", "list", "--config", str(other))
    assert "far" in listed.stdout and "kitchen-pi" not in listed.stdout
    missing = run_cli("targets", "list", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    added = run_cli("targets", "add", "orin", "--kind", "jetson-orin-nano", "--host", "192.0.2.10", "--json")
    assert added.returncode == 0, added.stderr
    answer = json.loads(added.stdout)
    assert answer["added"] == "orin" and answer["target"]["kind"] == "jetson-orin-nano"


def test_ssh_config_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text(
        "Host kitchen\n  HostName 192.0.2.40\n  User pi\n  Port 2222\n  IdentityFile ~/.ssh/pi_key\n"
        "  ProxyJump admin@bastion:2200\n"
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    endpoint = resolve_endpoint("kitchen")
    assert (endpoint.hostname, endpoint.user, endpoint.port) == ("192.0.2.40", "pi", 2222)
    assert endpoint.identity_files == (str(tmp_path / ".ssh" / "pi_key"),)
    assert endpoint.proxy_jump == ("admin@bastion:2200",)
    assert endpoint.host_key_name == "[192.0.2.40]:2222"
    # settings in edgeprof.toml win over ~/.ssh/config, as options on ssh's command line do
    explicit = resolve_endpoint("kitchen", user="root", port=22)
    assert (explicit.user, explicit.port, explicit.hostname) == ("root", 22, "192.0.2.40")


def test_board_sensor_defaults_fill_only_what_the_user_left_alone(isolated: Path) -> None:
    (isolated / "edgeprof.toml").write_text(
        '[targets.pi5]\nkind = "rpi5"\nhost = "x"\n'
        '[targets.meter]\nhost = "y"\n[targets.meter.sensors]\nenergy_command = ["/usr/bin/meter", "--watts"]\n'
    )
    pi5, meter = resolve_target("pi5"), resolve_target("meter")
    assert apply_sensor_defaults(pi5, ProfileOptions()).energy == "rpi5-pmic"
    assert apply_sensor_defaults(pi5, ProfileOptions(energy="off")).energy == "off"
    chosen = apply_sensor_defaults(meter, ProfileOptions())
    assert chosen.energy == "command" and chosen.energy_command == ("/usr/bin/meter", "--watts")
