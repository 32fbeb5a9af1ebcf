"""Options, argv parsing, listing, the dataset.json reader and the errors raised before Beam starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeloop.cli import main as cli_main
from edgeloop.errors import ConfigError, EdgeloopError
from pipelines.ingest import (
    DatasetVersionError,
    EmptyInputError,
    IngestOptions,
    InputNotFoundError,
    ingest,
    load_dataset_info,
)
from pipelines.ingest.errors import CatalogueError
from pipelines.ingest.job import pipeline_options
from pipelines.ingest.listing import list_inputs, normalize, split_known
from pipelines.ingest.options import build, parse_argv


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- options


def test_argv_splits_into_our_options_and_beam_flags() -> None:
    options = parse_argv(
        ["--input", "photos", "--output", "ds", "--max-side", "512", "--previous", "v0002", "--eval-fraction", "0.1",
         "--runner", "DataflowRunner", "--project", "p", "--region=europe-west1", "--no-warehouse"]
    )  # fmt: skip
    assert (options.input, options.output, options.max_side, options.previous) == ("photos", "ds", 512, "v0002")
    assert options.eval_fraction == 0.1 and options.record is False
    assert options.runner == "DataflowRunner" and not options.is_direct
    assert options.beam_args == ("--project", "p", "--region=europe-west1")


@pytest.mark.beam
def test_unknown_flags_reach_beam_untouched() -> None:
    options = parse_argv(["--input", "a", "--output", "b", "--runner", "DataflowRunner", "--project", "p",
                          "--region=europe-west1"])  # fmt: skip
    po = pipeline_options(options).get_all_options()
    assert po["runner"] == "DataflowRunner" and po["project"] == "p" and po["region"] == "europe-west1"
    assert po["save_main_session"] is False


def test_direct_runner_is_the_default() -> None:
    options = parse_argv(["--input", "a", "--output", "b"])
    assert options.is_direct and options.num_workers == 2 and options.running_mode == "multi_processing"
    assert options.work_units == 16


@pytest.mark.beam
def test_direct_runner_is_explicit_and_multi_processing() -> None:
    options = parse_argv(["--input", "a", "--output", "b"])
    po = pipeline_options(options).get_all_options()
    assert po["direct_running_mode"] == "multi_processing" and po["direct_num_workers"] == 2
    assert po["runner"] is None  # the FnApiRunner object is passed in: Beam never picks Prism
    # Beam's own flags given explicitly still win.
    po = pipeline_options(parse_argv(["--input", "a", "--output", "b", "--direct_num_workers=3"])).get_all_options()
    assert po["direct_num_workers"] == 3


def test_bad_options_name_the_flag_and_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"--max-side=4: .*greater than or equal to 16"):
        build(input="a", output="b", max_side=4)
    with pytest.raises(ConfigError, match="dataset version '12' is not of the form v0001"):
        build(input="a", output="b", dataset_version="12")
    with pytest.raises(ConfigError, match="outside"):
        build(input="a", output="b", eval_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ConfigError, match="--maxside=3: Extra inputs are not permitted"):
        build(input="a", output="b", maxside=3)


# --------------------------------------------------------------------------- listing


def test_folder_listing_labels_by_first_folder(tmp_path: Path) -> None:
    touch(tmp_path / "in" / "rose-soap" / "1.jpg")
    touch(tmp_path / "in" / "rose-soap" / "deeper" / "2.jpg")
    touch(tmp_path / "in" / "mint-bar" / "3.jpg")
    touch(tmp_path / "in" / "loose.jpg")
    touch(tmp_path / "in" / "mint-bar" / ".DS_Store")
    touch(tmp_path / "in" / ".hidden" / "4.jpg")
    files = list_inputs(str(tmp_path / "in"))
    labels = {Path(f.uri).name: f.label for f in files}
    assert labels == {"1.jpg": "rose-soap", "2.jpg": "rose-soap", "3.jpg": "mint-bar", "loose.jpg": None}
    assert all(Path(f.uri).is_absolute() and f.size == 1 and f.generation for f in files)


def test_catalogue_csv_and_jsonl(tmp_path: Path) -> None:
    a = touch(tmp_path / "pics" / "a.jpg")
    b = touch(tmp_path / "pics" / "sub" / "b.jpg")
    csv = tmp_path / "cat.csv"
    csv.write_text(f"uri,label\npics/a.jpg,rose-soap\n{b},mint-bar\npics/gone.jpg,mint-bar\n")
    files = {Path(f.uri).name: f for f in list_inputs(str(csv))}
    assert files["a.jpg"].label == "rose-soap" and files["a.jpg"].uri == str(a.resolve())
    assert files["b.jpg"].label == "mint-bar" and not files["b.jpg"].missing
    assert files["gone.jpg"].missing
    jl = tmp_path / "cat.jsonl"
    jl.write_text(json.dumps({"uri": "pics/a.jpg", "label": "rose-soap"}) + "\n\n")
    assert [f.label for f in list_inputs(str(jl))] == ["rose-soap"]


def test_bad_catalogues_say_which_line(tmp_path: Path) -> None:
    csv = tmp_path / "cat.csv"
    csv.write_text("a.jpg,rose\nb.jpg\n")
    with pytest.raises(CatalogueError, match="line 2"):
        list_inputs(str(csv))
    csv.write_text("a.jpg,rose\na.jpg,mint\n")
    with pytest.raises(CatalogueError, match="listed as 'rose' and as 'mint'"):
        list_inputs(str(csv))
    jl = tmp_path / "cat.jsonl"
    jl.write_text('{"uri": "a.jpg"}\n')
    with pytest.raises(CatalogueError, match="line 1"):
        list_inputs(str(jl))


def test_missing_and_empty_inputs_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="does not exist"):
        list_inputs(str(tmp_path / "nope"))
    (tmp_path / "empty" / "rose-soap").mkdir(parents=True)
    with pytest.raises(EmptyInputError, match="holds no files; put photos in one sub-folder per product"):
        list_inputs(str(tmp_path / "empty"))
    with pytest.raises(InputNotFoundError, match="catalogue"):
        list_inputs(str(tmp_path / "nope.csv"))


def test_known_files_are_matched_by_uri_size_and_generation(tmp_path: Path) -> None:
    files = list_inputs(str(touch(tmp_path / "in" / "a" / "1.jpg").parent.parent))
    f = files[0]
    new, old = split_known(files, {f.uri: (f.size, f.generation)})
    assert (new, old) == ([], files)
    new, old = split_known(files, {f.uri: (f.size + 1, f.generation)})
    assert (new, old) == (files, [])


def test_normalize_makes_local_paths_absolute() -> None:
    assert normalize("photos").startswith("/") and normalize("gs://b/photos/") == "gs://b/photos"


# --------------------------------------------------------------------------- errors before Beam starts


def test_ingest_refuses_a_missing_or_empty_input(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="nope"):
        ingest(IngestOptions(input=str(tmp_path / "nope"), output=str(tmp_path / "out")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyInputError):
        ingest(IngestOptions(input=str(tmp_path / "empty"), output=str(tmp_path / "out")))


def test_ingest_refuses_an_output_inside_the_input(tmp_path: Path) -> None:
    touch(tmp_path / "in" / "a" / "1.jpg")
    with pytest.raises(ConfigError, match="inside --input"):
        ingest(IngestOptions(input=str(tmp_path / "in"), output=str(tmp_path / "in" / "datasets")))


def test_ingest_refuses_an_unknown_previous_version(tmp_path: Path) -> None:
    touch(tmp_path / "in" / "a" / "1.jpg")
    with pytest.raises(DatasetVersionError, match="no dataset at"):
        ingest(IngestOptions(input=str(tmp_path / "in"), output=str(tmp_path / "out"), previous="v0003"))


@pytest.mark.slow  # the CLI loads every stage's commands
def test_cli_prints_one_line_for_a_user_mistake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["ingest", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "out")])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "error:" in err and "does not exist" in err and "Traceback" not in err


def test_ingest_errors_are_edgeloop_errors() -> None:
    assert issubclass(InputNotFoundError, EdgeloopError) and issubclass(DatasetVersionError, EdgeloopError)


# --------------------------------------------------------------------------- dataset.json reader


def test_load_dataset_info_explains_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DatasetVersionError, match="no dataset at"):
        load_dataset_info(str(tmp_path / "v0001"))
    touch(tmp_path / "v0001" / "dataset.json", b'{"schema_version": 1}')
    with pytest.raises(DatasetVersionError, match=r"not a valid dataset\.json"):
        load_dataset_info(str(tmp_path / "v0001" / "dataset.json"))


def test_the_package_and_the_reader_import_without_beam_or_tensorflow() -> None:
    code = (
        "import sys, pipelines.ingest, pipelines.ingest.versions, pipelines.ingest.cli, edgeloop.dataset, edgeloop.examples; "
        "heavy = {'apache_beam', 'tensorflow'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
