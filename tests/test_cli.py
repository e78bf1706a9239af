"""The ``levante`` command, run as a child process: flags, env vars, errors, logging.

Every child listens on port 0 (or a port picked free just before) and is
terminated by its Popen object when the test ends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from levante.server import Config, ConfigError
from tests.apps.proc import Child, free_port, free_ports
from tests.conftest import ROOT, VENV_BIN, connect, read_response, spawn, wait_for

Start = Callable[..., Child]


@pytest.fixture
def start() -> Iterator[Start]:
    """``start(*args, cwd=..., env=...)`` runs ``python -m levante ARGS``."""
    children: list[Child] = []

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Child:
        child = Child(spawn(*args, cwd=cwd, env=env))
        children.append(child)
        return child

    yield run
    for child in children:
        child.stop()


def get_json(port: int, path: str = "/") -> dict[str, Any]:
    response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5.0)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def run_to_exit(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``levante ARGS`` expecting it to exit by itself: (exit code, output)."""
    child = Child(spawn(*args, env=env))
    try:
        code = child.finish(timeout=20)
        return code, child.output
    finally:
        child.stop()


# -- serving ------------------------------------------------------------------


def test_serves_the_app_named_on_the_command_line(start: Start) -> None:
    child = start("tests.apps.basic:app", "--port", "0")
    port = child.port()
    response = httpx.get(f"http://127.0.0.1:{port}/hello", timeout=5.0)
    assert response.status_code == 200
    assert response.json()["app"] == "basic"
    assert response.json()["path"] == "/hello"
    assert response.headers["server"] == "levante"


def test_sigterm_stops_the_server_with_exit_code_zero(start: Start) -> None:
    child = start("tests.apps.basic:app", "--port", "0")
    port = child.port()
    assert get_json(port)["app"] == "basic"
    child.popen.terminate()
    assert child.finish() == 0
    assert "Shutting down" in child.output


HELP_FLAGS = [
    # (flag as shown in the options list, env variable, default as shown)
    ("--host HOST", "LEVANTE_HOST", "127.0.0.1"),
    ("--port PORT", "LEVANTE_PORT", "8000"),
    ("--log-level {critical,error,warning,info,debug,trace}", "LEVANTE_LOG_LEVEL", "info"),
    ("--access-log, --no-access-log", "LEVANTE_ACCESS_LOG", "True"),
    ("--root-path ROOT_PATH", "LEVANTE_ROOT_PATH", ""),
    ("--timeout-keep-alive TIMEOUT_KEEP_ALIVE", "LEVANTE_TIMEOUT_KEEP_ALIVE", "5.0"),
    ("--app-dir APP_DIR", "LEVANTE_APP_DIR", "."),
    ("--factory, --no-factory", "LEVANTE_FACTORY", "False"),
    ("--env-file ENV_FILE", "LEVANTE_ENV_FILE", "None"),
    ("--lifespan {auto,on,off}", "LEVANTE_LIFESPAN", "auto"),
    ("--loop {auto,asyncio,uvloop}", "LEVANTE_LOOP", "auto"),
    ("--limit-concurrency LIMIT_CONCURRENCY", "LEVANTE_LIMIT_CONCURRENCY", "None"),
    ("--limit-request-body LIMIT_REQUEST_BODY", "LEVANTE_LIMIT_REQUEST_BODY", "1073741824"),
    (
        "--timeout-graceful-shutdown TIMEOUT_GRACEFUL_SHUTDOWN",
        "LEVANTE_TIMEOUT_GRACEFUL_SHUTDOWN",
        "30.0",
    ),
]


def test_help_lists_every_flag_with_its_default_and_env_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "levante", "--help"],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "usage: levante" in text
    assert "LEVANTE_" in text  # the description explains the variables
    options = text[text.index("options:") :]
    for flag, env, default in HELP_FLAGS:
        assert flag in options, f"{flag!r} missing from --help:\n{result.stdout}"
        entry = options[options.index(flag) :]
        entry = entry[: entry.index("(default:") + len(f"(default: {default})")]
        assert f"[env: {env}]" in entry, f"{flag}: no [env: {env}] in {entry!r}"
        assert entry.endswith(f"(default: {default})"), f"{flag}: wrong default in {entry!r}"


def test_levante_console_script_serves() -> None:
    script = VENV_BIN / "levante"
    if not script.exists():
        pytest.skip("the levante console script is not installed in this environment")
    popen = subprocess.Popen(
        [str(script), "tests.apps.basic:app", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    child = Child(popen)
    try:
        assert get_json(child.port())["app"] == "basic"
    finally:
        child.stop()


def test_version_flag_prints_the_version() -> None:
    code, output = run_to_exit("--version")
    assert code == 0
    assert re.search(r"levante \d+\.\d+", output)


# -- import errors ------------------------------------------------------------


def test_missing_module_is_named_in_the_error() -> None:
    code, output = run_to_exit("levante_no_such_module:app", "--port", "0")
    assert code != 0
    assert "levante_no_such_module" in output
    assert "Error loading ASGI app" in output
    assert "Levante running on" not in output


def test_missing_attribute_is_named_in_the_error() -> None:
    code, output = run_to_exit("tests.apps.basic:no_such_app", "--port", "0")
    assert code != 0
    assert "no_such_app" in output
    assert "tests.apps.basic" in output
    assert "Levante running on" not in output


def test_app_string_without_colon_explains_the_format() -> None:
    code, output = run_to_exit("nocolon", "--port", "0")
    assert code != 0
    assert "<module>:<attribute>" in output
    assert "nocolon" in output


def test_missing_app_argument_is_a_usage_error() -> None:
    code, output = run_to_exit("--port", "0")
    assert code == 2
    assert "APP" in output


def test_import_error_inside_the_module_says_the_module_failed_to_import() -> None:
    code, output = run_to_exit("tests.apps.broken_import:app", "--port", "0")
    assert code != 0
    assert "Error while importing module 'tests.apps.broken_import'" in output
    # the real cause is shown: the module the app module itself imports
    assert "levante_tests_missing_dependency" in output
    assert "Levante running on" not in output


def test_import_error_of_a_module_whose_name_prefixes_the_app_module(tmp_path: Path) -> None:
    # shop_api.py exists and imports a missing `shop`: the error is inside
    # shop_api, not a wrong app string or --app-dir.
    (tmp_path / "shop_api.py").write_text("import shop  # noqa\n\napp = None\n")
    code, output = run_to_exit("shop_api:app", "--app-dir", str(tmp_path), "--port", "0")
    assert code != 0
    assert "shop" in output
    assert "Error while importing module 'shop_api'" in output, output


def test_import_error_of_a_name_inside_the_module_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bad_name_import.py").write_text(
        "from os import levante_no_such_name  # noqa\n\napp = None\n"
    )
    code, output = run_to_exit("bad_name_import:app", "--app-dir", str(tmp_path), "--port", "0")
    assert code != 0
    assert "levante_no_such_name" in output
    assert "Levante running on" not in output
    # reported like a missing module imported inside the app module, not as a crash
    assert "Error while importing module 'bad_name_import'" in output, output


def test_attribute_that_is_not_callable_is_refused() -> None:
    code, output = run_to_exit("tests.apps.basic:not_an_app", "--port", "0")
    assert code != 0
    assert "not callable" in output


# -- app loading flags ----------------------------------------------------------


def test_factory_flag_calls_the_factory(start: Start) -> None:
    child = start("tests.apps.basic:create_app", "--factory", "--port", "0")
    assert get_json(child.port())["app"] == "factory"


def test_app_dir_makes_a_module_in_another_directory_importable(
    start: Start, tmp_path: Path
) -> None:
    (tmp_path / "levante_tmp_app_module.py").write_text(
        "from tests.apps.basic import send_json\n\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] == 'http':\n"
        "        await send_json(send, {'app': 'from app dir'})\n"
    )
    child = start("levante_tmp_app_module:app", "--app-dir", str(tmp_path), "--port", "0")
    assert get_json(child.port())["app"] == "from app dir"


@pytest.mark.parametrize(
    ("app_sets", "args", "expected"),
    [
        pytest.param(None, (), 7000, id="default"),
        pytest.param(None, ("--gc-threshold", "0"), None, id="zero-leaves-the-default"),
        pytest.param(None, ("--gc-threshold", "1500"), 1500, id="flag"),
        pytest.param(20000, (), 20000, id="never-lowered"),
        pytest.param(300, (), 300, id="set-by-the-app-on-import"),
    ],
)
def test_gc_threshold_while_serving(
    start: Start,
    tmp_path: Path,
    app_sets: int | None,
    args: tuple[str, ...],
    expected: int | None,
) -> None:
    setting = f"gc.set_threshold({app_sets}, 10, 10)\n" if app_sets else ""
    (tmp_path / "levante_gc_app.py").write_text(
        "import gc\n"
        "from tests.apps.basic import send_json\n"
        + setting
        + "async def app(scope, receive, send):\n"
        "    if scope['type'] == 'http':\n"
        "        await send_json(send, {'threshold': gc.get_threshold()[0]})\n"
    )
    if expected is None:  # the interpreter's own default (700 before 3.13)
        default = subprocess.run(
            [sys.executable, "-c", "import gc; print(gc.get_threshold()[0])"],
            capture_output=True,
            text=True,
            check=True,
        )
        expected = int(default.stdout)
    child = start("levante_gc_app:app", "--app-dir", str(tmp_path), "--port", "0", *args)
    assert get_json(child.port())["threshold"] == expected


def test_module_outside_app_dir_is_not_found(tmp_path: Path) -> None:
    code, output = run_to_exit("levante_tmp_absent_module:app", "--app-dir", str(tmp_path))
    assert code != 0
    assert "levante_tmp_absent_module" in output


def test_env_file_sets_variables_the_app_reads(start: Start, tmp_path: Path) -> None:
    env_file = tmp_path / "test.env"
    env_file.write_text("LEVANTE_TEST_GREETING=hello from dotenv\n")
    child = start("tests.apps.basic:env_app", "--env-file", str(env_file), "--port", "0")
    data = get_json(child.port(), "/LEVANTE_TEST_GREETING")
    assert data["value"] == "hello from dotenv"


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    code, output = run_to_exit(
        "tests.apps.basic:app", "--env-file", str(tmp_path / "absent.env"), "--port", "0"
    )
    assert code != 0
    assert "absent.env" in output


# -- environment variables --------------------------------------------------------


def test_levante_port_variable_sets_the_port(start: Start) -> None:
    port = free_port()
    child = start("tests.apps.basic:app", env={"LEVANTE_PORT": str(port)})
    assert child.port() == port
    assert get_json(port)["app"] == "basic"


def test_port_flag_beats_the_levante_port_variable(start: Start) -> None:
    env_port, flag_port = free_ports(2)
    child = start(
        "tests.apps.basic:app", "--port", str(flag_port), env={"LEVANTE_PORT": str(env_port)}
    )
    assert child.port() == flag_port
    assert get_json(flag_port)["app"] == "basic"


def test_levante_root_path_variable_reaches_the_scope(start: Start) -> None:
    child = start("tests.apps.basic:app", "--port", "0", env={"LEVANTE_ROOT_PATH": "/api"})
    data = get_json(child.port(), "/items")
    assert data["root_path"] == "/api"
    assert data["path"] == "/api/items"


def test_root_path_flag_beats_the_variable(start: Start) -> None:
    child = start(
        "tests.apps.basic:app",
        "--port",
        "0",
        "--root-path",
        "/cli",
        env={"LEVANTE_ROOT_PATH": "/env"},
    )
    data = get_json(child.port(), "/items")
    assert data["root_path"] == "/cli"
    assert data["path"] == "/cli/items"


def test_levante_app_variable_names_the_app(start: Start) -> None:
    env = {"LEVANTE_APP": "tests.apps.basic:create_app", "LEVANTE_FACTORY": "true"}
    child = start("--port", "0", env=env)
    assert get_json(child.port())["app"] == "factory"


def test_invalid_levante_variable_is_an_error() -> None:
    code, output = run_to_exit("tests.apps.basic:app", env={"LEVANTE_PORT": "not-a-number"})
    assert code != 0
    assert "LEVANTE_PORT" in output


# -- invalid flags ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"), [("--lifespan", "maybe"), ("--loop", "tokio"), ("--log-level", "loud")]
)
def test_invalid_choice_is_a_usage_error(flag: str, value: str) -> None:
    code, output = run_to_exit("tests.apps.basic:app", flag, value)
    assert code == 2
    assert "invalid choice" in output
    assert repr(value) in output
    assert flag in output


def test_non_numeric_port_is_a_usage_error() -> None:
    code, output = run_to_exit("tests.apps.basic:app", "--port", "eighty")
    assert code == 2
    assert "--port" in output


def test_out_of_range_port_flag_is_an_error() -> None:
    code, output = run_to_exit("tests.apps.basic:app", "--port", "70000")
    assert code != 0
    assert "70000" in output
    assert "Levante running on" not in output


# -- logging ----------------------------------------------------------------------


def _log_config(marker: str) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"marked": {"format": f"{marker} %(levelname)s %(message)s"}},
        "handlers": {
            "out": {
                "class": "logging.StreamHandler",
                "formatter": "marked",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {"levante": {"handlers": ["out"], "level": "INFO", "propagate": False}},
    }


def test_log_config_json_changes_the_format(start: Start, tmp_path: Path) -> None:
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(_log_config("JSONCFG")))
    child = start("tests.apps.basic:app", "--port", "0", "--log-config", str(path))
    line = child.wait_line("Levante running on")
    assert line.startswith("JSONCFG INFO Levante running on http://127.0.0.1:")
    assert get_json(child.port())["app"] == "basic"


def test_log_config_yaml_changes_the_format(start: Start, tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "logging.yaml"
    path.write_text(yaml.safe_dump(_log_config("YAMLCFG")))
    child = start("tests.apps.basic:app", "--port", "0", "--log-config", str(path))
    line = child.wait_line("Levante running on")
    assert line.startswith("YAMLCFG INFO Levante running on http://127.0.0.1:")
    assert get_json(child.port())["app"] == "basic"


def test_invalid_log_config_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "logging.json"
    path.write_text(json.dumps({"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}))
    code, output = run_to_exit("tests.apps.basic:app", "--port", "0", "--log-config", str(path))
    assert code != 0
    assert "logging.json" in output
    assert "Levante running on" not in output


ACCESS_LINE = re.compile(
    r'(?P<client>127\.0\.0\.1:\d+) - "GET /search\?q=levante HTTP/1\.1" 200 '
    r"(?P<ms>\d+(\.\d+)?)ms"
)


def test_access_log_line_has_client_request_status_and_duration(start: Start) -> None:
    child = start("tests.apps.basic:app", "--port", "0")
    port = child.port()
    with connect(port) as sock:
        host, client_port = sock.getsockname()[:2]
        client = f"{host}:{client_port}"
        sock.sendall(b"GET /search?q=levante HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = read_response(sock)
    assert status == b"HTTP/1.1 200 OK"
    line = child.wait_line('"GET /search?q=levante HTTP/1.1"')
    match = ACCESS_LINE.search(line)
    assert match is not None, line
    assert match["client"] == client
    assert line.startswith("INFO:")


def test_no_access_log_removes_the_access_line(start: Start) -> None:
    child = start("tests.apps.basic:app", "--port", "0", "--no-access-log")
    port = child.port()
    assert get_json(port, "/quiet")["path"] == "/quiet"
    child.popen.terminate()
    assert child.finish() == 0
    assert "Shutting down" in child.output  # the server's log still works
    assert '"GET /quiet' not in child.output


def test_log_level_warning_hides_the_running_on_line(start: Start) -> None:
    port = free_port()
    child = start("tests.apps.basic:app", "--port", str(port), "--log-level", "warning")

    def answers() -> bool:
        try:
            return get_json(port)["app"] == "basic"
        except httpx.TransportError:
            assert child.popen.poll() is None, child.output
            return False

    wait_for(answers, timeout=15.0, interval=0.05)
    child.popen.terminate()
    assert child.finish() == 0
    assert "Levante running on" not in child.output
    assert "INFO" not in child.output
    assert '"GET /' not in child.output  # access lines are info too


# -- event loop -------------------------------------------------------------------


def test_loop_asyncio_serves_on_an_asyncio_loop(start: Start) -> None:
    child = start("tests.apps.basic:app", "--port", "0", "--loop", "asyncio")
    assert get_json(child.port())["loop"].startswith("asyncio")


def test_loop_auto_uses_uvloop_when_installed(start: Start) -> None:
    pytest.importorskip("uvloop")
    child = start("tests.apps.basic:app", "--port", "0")
    assert get_json(child.port())["loop"].startswith("uvloop")


# -- levante.run() and Config.resolve -----------------------------------------------


@pytest.mark.parametrize(
    "app_expr", ["basic.app", "'tests.apps.basic:app'"], ids=["object", "import-string"]
)
def test_levante_run_serves_from_a_script(app_expr: str) -> None:
    script = (
        "import levante\n"
        "from tests.apps import basic\n"
        f"levante.run({app_expr}, port=0, log_level='info')\n"
    )
    popen = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    child = Child(popen)
    try:
        assert get_json(child.port())["app"] == "basic"
        popen.terminate()
        assert child.finish() == 0
    finally:
        child.stop()


def test_config_resolve_rejects_an_unknown_setting() -> None:
    with pytest.raises(ConfigError, match="prot"):
        Config.resolve({"prot": 8000}, environ={})


def test_config_resolve_rejects_a_port_out_of_range() -> None:
    with pytest.raises(ConfigError, match="70000"):
        Config.resolve({"port": 70000}, environ={})


def test_config_resolve_rejects_an_invalid_choice() -> None:
    with pytest.raises(ConfigError, match="lifespan"):
        Config.resolve({"lifespan": "maybe"}, environ={})


def test_config_resolve_reads_levante_variables_below_explicit_values() -> None:
    environ = {"LEVANTE_PORT": "9001", "LEVANTE_HOST": "127.0.0.2", "LEVANTE_ACCESS_LOG": "no"}
    config = Config.resolve({"port": 9002}, environ=environ)
    assert config.port == 9002
    assert config.host == "127.0.0.2"
    assert config.access_log is False


def test_config_resolve_rejects_an_invalid_variable() -> None:
    with pytest.raises(ConfigError, match="LEVANTE_TIMEOUT_KEEP_ALIVE"):
        Config.resolve({}, environ={"LEVANTE_TIMEOUT_KEEP_ALIVE": "soon"})
