"""HTCondor submit descriptions, checked by the real HTCondor bindings and by running them.

Every description batchkit writes is parsed by ``htcondor2.Submit`` (the submit-language code
of HTCondor itself): its item data must be exactly one item per row with the intended values,
and expanding the per-proc commands with those items must give exactly the intended paths and
arguments. The expanded ``executable`` + ``arguments`` are then *run* (no scheduler: the
command a node would start), and in file-transfer mode the sandbox is built and emptied
following HTCondor's documented transfer rules, so the test sees real exit markers and
output files rather than strings.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import missing

import batchkit as bk
from batchkit.backends.htcondor_language import describe_command, quote_arguments, validate_submit_commands
from batchkit.backends.htcondor_submit import HTCondorFileFactory, SubmitSettings
from batchkit.backends.htcondor_transfer import plan_transfer
from batchkit.backends.local import read_exit_marker
from batchkit.errors import SpecError
from batchkit.jobfiles import JobFiles, build_rows

try:
    import htcondor2 as _htcondor2
except ImportError:  # pragma: no cover - the CI installs the bindings
    _htcondor2 = None

#: Same rule as tests/conftest.py: in CI a missing dependency fails instead of skipping.
PWNED = Path("/tmp/batchkit-htcondor-pwned")

NASTY = [
    "plain",
    "two words",
    "it's",
    'say "hi"',
    "$HOME and ${PATH}",
    "$(Process)",
    "$$(Cpus)",
    "$ENV(HOME)",
    f"`touch {PWNED}`",
    f"$(touch {PWNED})",
    "x\nqueue 100",
    "\n)\nqueue 7",
    "# not a comment",
    ")",
    "a, b , c",
    "trailing space ",
    "tab\there",
    "back\\slash",
    f"semi; touch {PWNED}",
    "ünïcödé ✓",
    "unit\x1fseparator",
    "",
    "-n",
]


@pytest.fixture
def condor() -> ModuleType:
    """The real HTCondor bindings: skipped on a developer machine without them, a failure in CI."""
    if _htcondor2 is None:
        message = "the HTCondor Python bindings are missing: .venv/bin/pip install 'htcondor>=24'"
        missing(message)
    return _htcondor2


@pytest.fixture(autouse=True)
def _no_pwned() -> Iterator[None]:
    PWNED.unlink(missing_ok=True)
    yield
    assert not PWNED.exists(), "a job argument was executed by a shell"


# ----------------------------------------------------------------------------- helpers
def parse_v2_arguments(value: str) -> list[str]:
    """Split an HTCondor "new syntax" arguments value, following the condor_submit manual."""
    assert value.startswith('"') and value.endswith('"'), value
    text = value[1:-1].replace('""', '"')
    args: list[str] = []
    current: list[str] = []
    quoted = started = False
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "'" and text[i + 1 : i + 2] == "'":
                current.append("'")
                i += 2
                continue
            if c == "'":
                quoted = False
            else:
                current.append(c)
        elif c in " \t":
            if started:
                args.append("".join(current))
                current, started = [], False
        elif c == "'":
            quoted = started = True
        else:
            current.append(c)
            started = True
        i += 1
    if started:
        args.append("".join(current))
    return args


def shell_words(line: str) -> list[str]:
    """What bash makes of a line of shell words (used to read ``bk_command`` back)."""
    proc = subprocess.run(
        ["bash", "-c", 'eval "set -- $1"; printf "%s\\0" "$@"', "bash", line],
        capture_output=True,
        check=True,
    )
    return proc.stdout.decode().split("\0")[:-1]


def description(files: JobFiles) -> str:
    return files.submit_files[0].read_text()


def procs(condor: ModuleType, text: str) -> list[dict[str, Any]]:
    """One dict per proc: the item values plus every submit command expanded for that proc.

    HTCondor expands a proc's commands with its item values and ``$(Process)`` set; the
    bindings cannot build job ads without a schedd, so the same expansion is done with a
    description whose item variables are set by hand. ``bk_command`` is the documented
    command: the item column, or (with file transfer) the ``#`` line above the item.
    """
    sub = condor.Submit(text)
    body = text[: text.index("\nqueue ")]
    comments = [line[2:] for line in text[text.index("\nqueue ") :].splitlines() if line.startswith("# ")]
    keys = list(condor.Submit(body).keys())
    out = []
    for proc, item in enumerate(sub.itemdata()):
        one = condor.Submit(body)
        for key, value in item.items():
            one[key] = value
        one["Process"] = str(proc)
        values: dict[str, Any] = {}
        for key in keys:
            # a command that expands to nothing counts as not given (expand raises KeyError)
            with contextlib.suppress(KeyError):
                values[key] = one.expand(key)
        if "bk_command" in item:
            one["bk_probe"] = "$(bk_command)"
            values["bk_command"] = one.expand("bk_probe")
        else:
            values["bk_command"] = comments[proc]
        values["item"] = item
        out.append(values)
    return out


def echo_spec(args: list[str], **kw: Any) -> bk.JobSpec:
    code = "import json, sys; print(json.dumps(sys.argv[1:]))"
    return bk.JobSpec([sys.executable, "-c", code, *args], **kw)


# ----------------------------------------------------------------------------- quoting
def test_argument_reader_follows_the_manual_examples() -> None:
    # the three "new syntax" examples of the condor_submit manual, with their documented results
    assert parse_v2_arguments('"3 simple arguments"') == ["3", "simple", "arguments"]
    assert parse_v2_arguments("\"one 'two with spaces' 3\"") == ["one", "two with spaces", "3"]
    assert parse_v2_arguments("\"one \"\"two\"\" 'spacey ''quoted'' argument'\"") == [
        "one",
        '"two"',
        "spacey 'quoted' argument",
    ]


def test_quoted_arguments_expand_to_the_same_argv(condor: ModuleType) -> None:
    argv = [a for a in NASTY if "\n" not in a and "$(" not in a and "$$" not in a and "$ENV(" not in a]
    assert "$HOME and ${PATH}" in argv and 'say "hi"' in argv and "it's" in argv
    value = quote_arguments(argv)
    expanded = condor.Submit(f"executable = /bin/true\narguments = {value}\n").expand("arguments")
    assert parse_v2_arguments(expanded) == argv


@pytest.mark.parametrize("arg", ["$(Process)", "$$(Cpus)", "$ENV(HOME)", "x$RANDOM_INTEGER(1,9)"])
def test_macro_references_cannot_reach_the_arguments_line(arg: str) -> None:
    with pytest.raises(SpecError, match="macro"):
        quote_arguments(["a", arg])


def test_line_breaks_cannot_reach_the_arguments_line() -> None:
    with pytest.raises(SpecError, match="line break"):
        quote_arguments(["a\nqueue 5"])


@pytest.mark.parametrize("arg", NASTY)
def test_command_description_reads_back_exactly(arg: str) -> None:
    argv = ["prog", arg, "end"]
    line = describe_command(argv)
    assert "\n" not in line and "\r" not in line
    assert shell_words(line) == argv


# ----------------------------------------------------------------------------- one proc per row
def test_one_proc_per_row_with_its_values(condor: ModuleType, tmp_path: Path) -> None:
    specs = [echo_spec([f"job{i}"], name=f"n{i}") for i in range(5)]
    files = HTCondorFileFactory().create(
        specs, tmp_path / "b", indices=[10, 11, 12, 13, 14], attempts=[1, 2, 1, 3, 1], tag="bkfeed.3"
    )
    text = description(files)
    sub = condor.Submit(text)
    assert sub.getQArgs().startswith("bk_row, bk_index, bk_attempt, bk_command from")
    expanded = procs(condor, text)
    assert [p["item"]["bk_row"] for p in expanded] == ["0", "1", "2", "3", "4"]
    directory = str(files.directory)
    for proc, p in enumerate(expanded):
        index = 10 + proc
        assert p["item"]["bk_index"] == str(index)
        assert p["item"]["bk_attempt"] == str([1, 2, 1, 3, 1][proc])
        assert p["executable"] == "/bin/sh"
        assert parse_v2_arguments(p["arguments"]) == [str(files.wrapper), directory, str(proc)]
        assert p["output"] == f"{directory}/logs/{index}.condor.out"
        assert p["error"] == f"{directory}/logs/{index}.condor.err"
        assert p["log"] == f"{directory}/htcondor.log"
        assert p["MY.BatchkitRow"] == str(proc)
        assert p["MY.BatchkitIndex"] == str(index)
        assert p["MY.BatchkitTag"] == '"bkfeed.3"'
        assert p["batch_name"] == "bkfeed.3"
        assert shell_words(p["bk_command"]) == list(specs[proc].command)


def test_nasty_arguments_cannot_inject_into_the_submit_language(condor: ModuleType, tmp_path: Path) -> None:
    specs = [echo_spec([arg]) for arg in NASTY] + [echo_spec(NASTY)]
    files = HTCondorFileFactory().create(specs, tmp_path / "b")
    text = description(files)
    clean = description(HTCondorFileFactory().create([echo_spec(["x"])] * len(specs), tmp_path / "c"))
    sub = condor.Submit(text)
    # exactly the commands of a harmless batch: nothing added, one queue statement, N items
    assert sorted(sub.keys()) == sorted(condor.Submit(clean).keys())
    assert len(list(sub.itemdata())) == len(specs)
    for proc, p in enumerate(procs(condor, text)):
        assert p["item"]["bk_row"] == str(proc)
        assert shell_words(p["bk_command"]) == list(specs[proc].command)
        assert parse_v2_arguments(p["arguments"])[-1] == str(proc)


def test_nasty_batch_directory(condor: ModuleType, tmp_path: Path) -> None:
    directory = tmp_path / 'it\'s a "dir" with $HOME, ${X} and ü'
    files = HTCondorFileFactory().create([echo_spec(["a"])], directory)
    (p,) = procs(condor, description(files))
    assert parse_v2_arguments(p["arguments"]) == [str(directory / "wrapper.sh"), str(directory), "0"]
    assert p["log"] == f"{directory}/htcondor.log"
    assert p["initialdir"] == str(directory)
    assert run_proc(p, tmp_path) == 0
    marker = read_exit_marker(directory / "markers" / "0.exit")
    assert marker is not None and marker.exit_code == 0


@pytest.mark.parametrize("name", ["with $(Process)", "with $$(Cpus)", "with $ENV(HOME)"])
def test_a_directory_htcondor_would_expand_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(SpecError, match="macro"):
        HTCondorFileFactory().create([echo_spec(["a"])], tmp_path / name)


def test_a_directory_with_a_line_break_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="line break"):
        HTCondorFileFactory().create([echo_spec(["a"])], tmp_path / "a\nqueue 9")


def test_many_rows_use_their_table_chunk(condor: ModuleType, tmp_path: Path) -> None:
    settings = SubmitSettings(transfer_files=True)
    files = HTCondorFileFactory(settings).create([echo_spec([str(i)]) for i in range(600)], tmp_path / "b")
    text = description(files)
    items = list(condor.Submit(text).itemdata())
    assert len(items) == 600
    assert [i["bk_inputs"] for i in items] == [f"table/{r // 256}.sh" for r in range(600)]
    assert [t.name for t in files.tables] == ["0.sh", "1.sh", "2.sh"]
    # each proc is documented by the comment line above its item, in order
    items_block = text[text.index("\nqueue ") :].splitlines()
    assert [line for line in items_block if line.startswith("# ")][599].endswith(" 599")


# ----------------------------------------------------------------------------- running what a node runs
def run_proc(p: dict[str, Any], cwd: Path) -> int:
    argv = [p["executable"], *parse_v2_arguments(p["arguments"])]
    return subprocess.run(argv, cwd=cwd, capture_output=True, timeout=60).returncode


def test_shared_filesystem_procs_run_through_the_wrapper(condor: ModuleType, tmp_path: Path) -> None:
    args = [["plain"], ["two words", "$(Process)", "x\nqueue 100"], ["ünï", "`id`"]]
    files = HTCondorFileFactory().create([echo_spec(a) for a in args], tmp_path / "b", indices=[5, 6, 7])
    for proc, p in enumerate(procs(condor, description(files))):
        assert run_proc(p, tmp_path) == 0
        index = 5 + proc
        marker = read_exit_marker(files.directory / "markers" / f"{index}.exit")
        assert marker is not None and marker.exit_code == 0
        assert json.loads((files.directory / "logs" / f"{index}.out").read_text()) == args[proc]


def transfer_in(p: dict[str, Any], sandbox: Path) -> None:
    """HTCondor's input transfer with preserve_relative_paths: relative entries keep their path
    (relative to initialdir), absolute ones land under their base name."""
    for entry in (e.strip() for e in p["transfer_input_files"].split(",")):
        if not entry:
            continue
        source = Path(p["initialdir"], entry)
        target = sandbox / (Path(entry).name if os.path.isabs(entry) else entry)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)


def transfer_out(p: dict[str, Any], sandbox: Path) -> None:
    """Outputs back to initialdir (directories merged, relative paths kept), files remapped."""
    remaps = {}
    text = p.get("transfer_output_remaps", "").strip('"')
    for pair in filter(None, (x.strip() for x in text.split(";"))):
        name, _, dest = pair.partition("=")
        remaps[name.strip()] = dest.strip()
    for entry in (e.strip() for e in p["transfer_output_files"].split(",")):
        if not entry:
            continue
        source = sandbox / entry
        if source.is_dir():
            shutil.copytree(source, Path(p["initialdir"], entry), dirs_exist_ok=True)
        else:
            dest = Path(p["initialdir"], remaps.get(entry, entry))
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, dest)


def test_transfer_mode_runs_in_the_sandbox(condor: ModuleType, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "numbers.txt").write_text("1 2 3\n")
    out_dir = tmp_path / "results"
    code = "import sys; open('sum.txt', 'w').write(str(sum(map(int, open('in.txt').read().split()))) + sys.argv[1])"
    specs = [
        bk.JobSpec(
            [sys.executable, "-c", code, f"-{i}"],
            inputs={"in.txt": str(data / "numbers.txt")},
            outputs={"sum.txt": str(out_dir / "sum_{index}.txt")},
        )
        for i in range(2)
    ]
    files = HTCondorFileFactory(SubmitSettings(transfer_files=True)).create(specs, tmp_path / "batch")
    for proc, p in enumerate(procs(condor, description(files))):
        assert p["should_transfer_files"] == "YES"
        assert p["preserve_relative_paths"] == "true"
        sandbox = tmp_path / f"sandbox{proc}"
        sandbox.mkdir()
        transfer_in(p, sandbox)
        assert sorted(x.name for x in sandbox.iterdir()) == ["numbers.txt", "table", "wrapper.sh"]
        assert run_proc(p, sandbox) == 0
        transfer_out(p, sandbox)
        assert (out_dir / f"sum_{proc}.txt").read_text() == f"6-{proc}"
        marker = read_exit_marker(files.directory / "markers" / f"{proc}.exit")
        assert marker is not None and marker.exit_code == 0
        assert (files.directory / "logs" / f"{proc}.err").exists()


def test_transfer_mode_failing_command_still_returns_logs_and_markers(condor: ModuleType, tmp_path: Path) -> None:
    spec = bk.JobSpec(["sh", "-c", "echo boom >&2; exit 3"])
    files = HTCondorFileFactory(SubmitSettings(spool=True)).create([spec], tmp_path / "batch")
    (p,) = procs(condor, description(files))
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    transfer_in(p, sandbox)
    assert run_proc(p, sandbox) == 3
    transfer_out(p, sandbox)
    marker = read_exit_marker(files.directory / "markers" / "0.exit")
    assert marker is not None and marker.exit_code == 3
    assert "boom" in (files.directory / "logs" / "0.err").read_text()


def test_transfer_plan_splits_local_files_from_urls(tmp_path: Path) -> None:
    spec = bk.JobSpec(
        ["x"],
        inputs={"a.root": "/data/a.root", "renamed.txt": "file:///data/orig.txt", "r.root": "root://eos//r.root"},
        outputs={"o.root": "out/o.root", "remote.root": "davs://host/remote.root"},
    )
    (row,) = build_rows([spec], cwd=str(tmp_path))
    plan = plan_transfer(row)
    assert plan.inputs == ("/data/a.root", "/data/orig.txt")
    assert plan.outputs == ("o.root",)
    assert plan.remaps == (("o.root", str(tmp_path / "out" / "o.root")),)
    assert plan.wrapper_spec(spec).inputs == {"r.root": "root://eos//r.root", "renamed.txt": "orig.txt"}
    assert plan.wrapper_spec(spec).outputs == {"remote.root": "davs://host/remote.root"}


def test_transfer_needs_the_same_output_names_in_every_job(tmp_path: Path) -> None:
    specs = [
        bk.JobSpec(["x"], outputs={"a.root": "/out/a_{index}.root"}),
        bk.JobSpec(["x"], outputs={"b.root": "/out/b_{index}.root"}),
    ]
    with pytest.raises(SpecError, match="same local output file names"):
        HTCondorFileFactory(SubmitSettings(transfer_files=True)).create(specs, tmp_path / "b")


@pytest.mark.parametrize(
    ("inputs", "outputs", "match"),
    [
        ({"a": "/x/same.txt", "b": "/y/same.txt"}, {}, "both land"),
        ({"a.txt": "/x/b.txt", "b.txt": "/y/a.txt"}, {}, "cannot rename"),
        ({"w": "/x/wrapper.sh"}, {}, "both land"),
        ({"a": "/x/with space.txt"}, {}, "cannot carry"),
        ({}, {"o,1": "/out/o"}, "cannot carry"),
        ({}, {"o": "/out/a;b=c"}, "cannot carry"),
    ],
)
def test_transfer_plan_refuses_what_htcondor_cannot_express(inputs: Any, outputs: Any, match: str) -> None:
    (row,) = build_rows([bk.JobSpec(["x"], inputs=inputs, outputs=outputs)], cwd="/")
    with pytest.raises(SpecError, match=match):
        plan_transfer(row)


# ----------------------------------------------------------------------------- resources and options
def test_uniform_resources_are_literal_lines(condor: ModuleType, tmp_path: Path) -> None:
    res = {"cpus": 4, "memory": "2GiB", "disk": "1000001", "walltime": "1:30:00", "gpus": 1}
    files = HTCondorFileFactory().create([echo_spec(["a"], resources=res)] * 2, tmp_path / "b")
    sub = condor.Submit(description(files))
    assert sub["request_cpus"] == "4"
    assert sub["request_memory"] == "2048"  # MiB
    assert sub["request_disk"] == "977"  # KiB, rounded up
    assert sub["request_gpus"] == "1"
    assert sub["MY.MaxRuntime"] == "5400"
    assert sub["allowed_execute_duration"] == "5400"


def test_resources_that_differ_become_item_columns(condor: ModuleType, tmp_path: Path) -> None:
    specs = [
        echo_spec(["a"], resources={"cpus": c, "memory": f"{m}MiB", "walltime": w})
        for c, m, w in [(1, 100, 60), (8, 300, 7200)]
    ]
    files = HTCondorFileFactory(SubmitSettings(walltime_enforcement="periodic_hold")).create(specs, tmp_path / "b")
    expanded = procs(condor, description(files))
    assert [p["request_cpus"] for p in expanded] == ["1", "8"]
    assert [p["request_memory"] for p in expanded] == ["100", "300"]
    assert [p["MY.MaxRuntime"] for p in expanded] == ["60", "7200"]
    assert expanded[1]["periodic_hold"] == "(JobStatus == 2) && (time() - JobCurrentStartExecutingDate > 7200)"
    assert expanded[1]["periodic_hold_reason"] == '"batchkit: walltime of 7200 s exceeded"'
    assert "request_gpus" not in expanded[0] and "request_disk" not in expanded[0]


def test_resource_set_for_some_jobs_only_is_refused(tmp_path: Path) -> None:
    specs = [echo_spec(["a"], resources={"memory": "1GB"}), echo_spec(["b"])]
    with pytest.raises(SpecError, match=r"resources\.memory"):
        HTCondorFileFactory().create(specs, tmp_path / "b")


@pytest.mark.parametrize(
    ("enforcement", "present", "absent"),
    [
        ("allowed_execute_duration", {"allowed_execute_duration"}, {"periodic_remove", "periodic_hold"}),
        ("periodic_remove", {"periodic_remove"}, {"allowed_execute_duration", "periodic_hold"}),
        ("periodic_hold", {"periodic_hold", "periodic_hold_reason"}, {"allowed_execute_duration"}),
        ("none", set(), {"allowed_execute_duration", "periodic_remove", "periodic_hold"}),
    ],
)
def test_walltime_enforcement(
    condor: ModuleType, tmp_path: Path, enforcement: str, present: set[str], absent: set[str]
) -> None:
    settings = SubmitSettings(walltime_enforcement=enforcement)
    files = HTCondorFileFactory(settings).create([echo_spec(["a"], resources={"walltime": 600})], tmp_path / "b")
    keys = set(condor.Submit(description(files)).keys())
    assert "MY.MaxRuntime" in keys
    assert present <= keys and not (absent & keys)


def test_unknown_walltime_enforcement_is_refused() -> None:
    with pytest.raises(SpecError, match="walltime_enforcement"):
        SubmitSettings(walltime_enforcement="kill")


def test_parallel_jobs_caps_materialized_procs(condor: ModuleType, tmp_path: Path) -> None:
    files = HTCondorFileFactory().create([echo_spec(["a"])] * 3, tmp_path / "b", options={"parallel_jobs": 2})
    assert condor.Submit(description(files))["max_materialize"] == "2"


def test_submit_commands_pass_through(condor: ModuleType, tmp_path: Path) -> None:
    commands = {
        "+AccountingGroup": '"group_u_CMS.u_alice"',
        "requirements": 'OpSysAndVer == "AlmaLinux9"',
        "universe": "docker",
        "docker_image": "almalinux:9",
        "+JobFlavour": '"espresso"',
    }
    files = HTCondorFileFactory(SubmitSettings(submit_commands=commands)).create([echo_spec(["a"])], tmp_path / "b")
    sub = condor.Submit(description(files))
    assert sub["MY.AccountingGroup"] == '"group_u_CMS.u_alice"'
    assert sub["requirements"] == 'OpSysAndVer == "AlmaLinux9"'
    assert sub["universe"] == "docker"  # later lines win over batchkit's "vanilla"
    assert sub["docker_image"] == "almalinux:9"


@pytest.mark.parametrize(
    "commands",
    [
        {"executable": "/bin/evil"},
        {"Arguments": "x"},
        {"+BatchkitTag": '"other"'},
        {"MY.BatchkitRow": "1"},
        {"queue": "5"},
        {"bk_inputs_0": "x"},
        {"requirements": "true\nqueue 10"},
        {"not a name": "x"},
    ],
)
def test_submit_commands_cannot_break_the_description(commands: dict[str, str]) -> None:
    with pytest.raises(SpecError):
        validate_submit_commands(commands)


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="tag"):
        HTCondorFileFactory().create([echo_spec(["a"])], tmp_path / "b", tag='x" || true || "')


def test_transfer_needs_initialdir_to_be_the_batch_directory(tmp_path: Path) -> None:
    factory = HTCondorFileFactory(SubmitSettings(transfer_files=True, initialdir=str(tmp_path)))
    with pytest.raises(SpecError, match="initialdir"):
        factory.create([echo_spec(["a"])], tmp_path / "b")


def test_setup_script_travels_with_the_job(condor: ModuleType, tmp_path: Path) -> None:
    setup = tmp_path / "setup.sh"
    setup.write_text("export FROM_SETUP=yes\n")
    spec = bk.JobSpec(["sh", "-c", 'test "$FROM_SETUP" = yes'])
    files = HTCondorFileFactory(SubmitSettings(transfer_files=True)).create([spec], tmp_path / "b", setup_script=setup)
    (p,) = procs(condor, description(files))
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    transfer_in(p, sandbox)
    assert (sandbox / "setup.sh").exists()
    assert run_proc(p, sandbox) == 0
