"""The public API is exactly `edge.__all__`, and every name in it exists."""

from __future__ import annotations

import edge


def test_all_exports_exist_and_are_public() -> None:
    exported = set(edge.__all__)
    assert exported == set(edge._EXPORTS) and dir(edge) == sorted(exported)
    for name in edge.__all__:
        assert getattr(edge, name) is not None  # names load on first use
    public = {name for name in vars(edge) if not name.startswith("_")}
    modules = {"bench", "cli", "events", "manifest", "metadata", "runtime", "variants"}
    helpers = {"annotations", "importlib", "Any", "TYPE_CHECKING"}
    assert exported == public - modules - helpers, exported ^ (public - modules - helpers)


def test_every_error_is_an_edge_error() -> None:
    errors = [getattr(edge, n) for n in edge.__all__ if isinstance(getattr(edge, n), type)]
    errors = [e for e in errors if issubclass(e, Exception)]
    assert len(errors) >= 14
    assert all(issubclass(e, edge.EdgeError) for e in errors)
    from edge.manifest import ManifestError
    from edge.metadata import MetadataError
    from edge.runtime import ModelLoadError

    # The historic homes of these errors still export the same classes.
    assert ManifestError is edge.ManifestError and MetadataError is edge.MetadataError
    assert ModelLoadError is edge.ModelLoadError


def test_updater_public_methods_are_its_lifecycle() -> None:
    """What an app calls, and nothing else: helpers (like building the poll's query parameters) stay private."""
    public = {name for name in vars(edge.Updater) if not name.startswith("_")}
    assert public == {"model", "start", "close", "check_now", "wake", "flush_telemetry"}, public
