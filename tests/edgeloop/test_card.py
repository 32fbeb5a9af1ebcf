"""The model card contract: `read_card` raises one `CardError` for every way a card can be unusable.

The CLI commands that read a card (`edgeloop gate`, `edgeloop convert`) print that error in one
message and exit non-zero; none shows a traceback or pydantic's multi-line report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeloop.card import CARD_NAME, read_card
from edgeloop.errors import CardError, EdgeloopError

# (what is in model_card.json, what the message says about it)
MALFORMED = {
    "not-json": ("{not json", r"is not a model card \(1 problem\(s\), first: Invalid JSON"),
    "not-a-card": ('{"name": "m"}', r"is not a model card \(\d+ problem\(s\), first: version: Field required"),
}


def _run_with_card(folder: Path, text: str) -> Path:
    """A run folder as the gate sees it: a model file and a card holding `text`."""
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"never loaded: the card is read first")
    (folder / CARD_NAME).write_text(text, encoding="utf-8")
    return folder


def test_a_folder_without_a_card_is_a_card_error(tmp_path: Path) -> None:
    with pytest.raises(CardError, match=rf"'{tmp_path / 'nowhere'}' has no {CARD_NAME}: pass a run folder"):
        read_card(tmp_path / "nowhere")


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_card_is_a_card_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    text, message = MALFORMED[kind]
    run = _run_with_card(tmp_path / "run", text)
    with pytest.raises(CardError, match=message) as caught:
        read_card(run)
    assert str(run / CARD_NAME) in str(caught.value) and isinstance(caught.value, EdgeloopError)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", sorted(MALFORMED))
@pytest.mark.parametrize("command", ["gate", "convert"])
def test_cli_reports_a_malformed_card_in_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, kind: str
) -> None:
    from edgeloop.cli import main

    run = _run_with_card(tmp_path / "run", MALFORMED[kind][0])
    argv = ["gate", str(run)] if command == "gate" else ["convert", "--run", str(run)]
    code = main(argv)
    captured = capsys.readouterr()
    err = "".join(captured.err.split())  # Rich folds long lines, even inside a path, at the terminal width
    assert code != 0
    assert err.count("error:") == 1 and f"{run / CARD_NAME}isnotamodelcard" in err
    assert "Traceback" not in captured.err + captured.out and "validationerror" not in err
