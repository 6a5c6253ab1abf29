"""The script runner alone: the output file's format, and the caps on what a script may print."""

import pytest

from provisioning.runner import OutputError, outputs_parse, script_run


def run(script: str, **limits):
    options = {"timeout_seconds": 20, "log_max_bytes": 10_000, "output_max_bytes": 1000, **limits}
    return script_run(interpreter="bash", scripts=[script], environment={}, **options)


def test_outputs_are_name_value_lines_and_multi_line_values_use_a_delimiter():
    text = "dbName=tenant_42\nurl=postgres://h/db?a=b\n\ncert<<EOF\n-----BEGIN-----\nabc\n-----END-----\nEOF\ndbName=again\n"
    assert outputs_parse(text) == {
        "dbName": "again",
        "url": "postgres://h/db?a=b",
        "cert": "-----BEGIN-----\nabc\n-----END-----",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just words\n", "line 1: expected NAME=value or NAME<<DELIMITER"),
        ("cert<<EOF\nabc\n", "line 3: cert<<EOF is never closed by a line 'EOF'"),
        ("bad-name=1\n", "line 1: 'bad-name' is not a variable name"),
    ],
)
def test_a_malformed_output_file_says_which_line(text, message):
    with pytest.raises(OutputError, match=message):
        outputs_parse(text)


def test_a_malformed_output_file_fails_the_run():
    result = run('echo "not an assignment" >> "$SBT_OUTPUT"')
    assert result.error == "$SBT_OUTPUT line 1: expected NAME=value or NAME<<DELIMITER, got 'not an assignment'"


def test_the_log_keeps_its_last_bytes_and_says_how_much_was_dropped():
    result = run("for i in $(seq 1 5000); do echo line $i; done", log_max_bytes=100)
    assert result.log.startswith("[... ") and "bytes of log dropped ...]" in result.log
    assert result.log.endswith("line 5000\n") and len(result.log.split("]\n", 1)[1]) == 100


def test_an_output_file_over_its_cap_fails_the_run():
    result = run('head -c 5000 /dev/zero | tr "\\0" a | sed "s/^/big=/" >> "$SBT_OUTPUT"', output_max_bytes=1000)
    assert result.error == "the output file ($SBT_OUTPUT) holds 5004 bytes, more than the 1000 allowed"


def test_the_script_sees_only_its_variables_and_a_fresh_directory():
    result = script_run(
        interpreter="bash",
        scripts=['echo "pwd=$PWD" >> "$SBT_OUTPUT"; echo "files=$(ls -A | wc -l)" >> "$SBT_OUTPUT"; env | sort'],
        environment={"STAGE": "test"},
        timeout_seconds=20,
        log_max_bytes=10_000,
        output_max_bytes=1000,
    )
    names = {line.split("=", 1)[0] for line in result.log.splitlines()}
    assert names <= {"PATH", "LANG", "LC_ALL", "TZ", "HOME", "STAGE", "SBT_OUTPUT", "PWD", "SHLVL", "_", "OLDPWD"}
    assert "DATABASE_URL" not in names and "DJANGO_SECRET_KEY" not in names
    assert result.outputs["files"] == "0" and result.outputs["pwd"].endswith("/work")


def test_the_post_script_runs_after_a_failing_script_and_the_first_failure_counts():
    result = script_run(
        interpreter="bash",
        scripts=["echo main; exit 4", 'echo cleanup; echo "cleaned=yes" >> "$SBT_OUTPUT"'],
        environment={},
        timeout_seconds=20,
        log_max_bytes=10_000,
        output_max_bytes=1000,
    )
    assert (result.exit_code, result.outputs, result.log) == (4, {"cleaned": "yes"}, "main\ncleanup\n")


def test_an_interpreter_that_does_not_exist_is_a_clear_error():
    result = script_run(
        interpreter="no-such-shell",
        scripts=["echo"],
        environment={},
        timeout_seconds=5,
        log_max_bytes=100,
        output_max_bytes=100,
    )
    assert result.exit_code is None and result.error.startswith("cannot start: [Errno 2] No such file or directory")
